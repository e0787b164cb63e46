"""Scope extraction: the scope of a DID written without one, from JUNO's name prefixes.

`scope:name` keeps its scope. Without a colon, RUN.* and block.* are raw, mc.* is mc, rec.* is rec,
user.<a>.* and group.<g>.* are user.<a> and group.<g>; anything else takes its first dotted element.
"""

from __future__ import annotations

from collections.abc import Sequence


class ScopeError(ValueError):
    """A DID from which no scope can be read."""


def extract_scope(did: str, scopes: Sequence[str] | None = None) -> tuple[str, str]:
    """Rucio's scope-extraction signature: the DID -> (scope, name)."""
    del scopes
    if ":" in did:
        scope, _, name = did.partition(":")
        if not scope or not name or ":" in name:
            raise ScopeError(f"cannot read scope and name from {did!r}: write scope:name with exactly one ':'")
        return scope, name
    name = did.rstrip("/")
    if not name:
        raise ScopeError("an empty DID has no scope")
    first, _, rest = name.partition(".")
    if first in ("RUN", "block"):
        return "raw", name
    if first in ("user", "group") and rest:
        return f"{first}.{rest.split('.')[0]}", name
    return first, name
