"""JUNO's schema for Rucio: Rucio's generic schema with JUNO's scopes, names and activities.

The server validates every DID it is given (add_did, add_dids, add_replicas, attach) against `DID`: in a JUNO
scope the name must follow that scope's pattern from naming.KINDS (files and collections apart when the
type is known). A refusal names the pattern in words, e.g. "raw file: RUN.<run:NNNNNN>...".
Everything not overridden here is Rucio's generic schema.
"""

from __future__ import annotations

import re
from typing import Any

from rucio.common.schema import generic
from rucio.common.schema.generic import *  # noqa: F403
from rucio.common.schema.generic import SCOPE_NAME_REGEXP  # noqa: F401  (named: Rucio requires it)

from juno_rucio_policy.naming import FIXED_SCOPES, JUNO_ACTIVITIES, KINDS, SCOPE_PATTERN

_NAMED_GROUP = re.compile(r"\(\?P<[a-z]+>")
_FILE_TYPES = ["FILE", "F"]
_COLLECTION_TYPES = ["DATASET", "CONTAINER"]


def _name_rule(scope: str, types: list[str] | None) -> dict[str, Any]:
    """The name rule for one scope's files, collections or (types None) any DID, as a schema on the DID."""
    kinds = [k for k in KINDS if k.scope == scope and (types is None or k.collection == (types is _COLLECTION_TYPES))]
    what = "file" if types is _FILE_TYPES else "collection" if types is _COLLECTION_TYPES else "DID"
    pattern = "|".join(f"({_NAMED_GROUP.sub('(', k.pattern)})" for k in kinds)  # one group name may repeat
    # no spaces inside a template: Rucio prints the schema wrapped at spaces, so each template stays whole
    description = f"{scope} {what}: " + " or ".join(k.template for k in kinds)
    rule: dict[str, Any] = {"properties": {"name": {"description": description, "pattern": pattern}}}
    if types is None:
        return rule
    # "required" first: the test stops at the first keyword that fails, and most DIDs sent in bulk have no type
    return {"if": {"required": ["type"], "properties": {"type": {"enum": types}}}, "then": rule}


def _did_schema(base: dict[str, Any]) -> dict[str, Any]:
    # The server validates every DID of a bulk call, so this is paid per file: one chain of conditions on the
    # scope (if raw ... else if mc ...), then that scope's rules only. Typed rules first: when a file or
    # collection fails, its own kinds are what the error names.
    chain: dict[str, Any] = {}
    for scope in reversed([s for s in FIXED_SCOPES if any(k.scope == s for k in KINDS)]):
        link: dict[str, Any] = {
            "if": {"required": ["scope"], "properties": {"scope": {"const": scope}}},
            "then": {"allOf": [_name_rule(scope, types) for types in (_FILE_TYPES, _COLLECTION_TYPES, None)]}}
        if chain:
            link["else"] = chain
        chain = link
    return {**base, "description": "Data Identifier (DID) with a JUNO name", "allOf": [chain]}


ACTIVITY = {"description": "Activity name", "type": "string",
            "enum": list(generic.ACTIVITY["enum"]) + [a for a in JUNO_ACTIVITIES if a not in generic.ACTIVITY["enum"]]}
SCOPE = {"description": "JUNO scope: raw, mc, rec, calib, user.<account> or group.<name>", "type": "string",
         "maxLength": 25, "pattern": SCOPE_PATTERN}
DID = _did_schema(generic.DID)

SCHEMAS = {**generic.SCHEMAS, "activity": ACTIVITY, "scope": SCOPE, "did": DID}
