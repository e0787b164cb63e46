"""Archive metadata for tape destinations: FTS collocation hints that keep related files together on tape.

Rucio's conveyor calls `collocation_hints(metadata)` for every transfer to a TAPE RSE (with
`[transfers] fts3tape_metadata_plugins = juno`) and sends the result to FTS as the file's archive_metadata:

    level 0  data type        raw | mc | rec | <scope>
    level 1  grouping         raw: block.<YYYYMMDD>.<stream>; mc: <campaign>.<tag> (the production);
                              rec: <pass>
    level 2  finer grouping   raw and rec: run <run>; mc: <step>
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from juno_rucio_policy.naming import BadName, parse


def hints_for(scope: str, name: str) -> dict[str, str]:
    """The collocation hints of one file, levels "0".."2"."""
    try:
        p = parse(scope, name, collection=False)
    except BadName:
        return {"0": scope.split(".")[0]}
    f = p.fields
    if p.kind == "raw.file":
        return {"0": "raw", "1": f"block.{f['date']}.{f['stream']}", "2": f"run{f['run']}"}
    if p.kind == "mc.file":
        return {"0": "mc", "1": f"{f['campaign']}.{f['tag']}", "2": f["step"]}
    if p.kind == "rec.file":
        return {"0": "rec", "1": f["pass"], "2": f"run{f['run']}"}
    return {"0": scope.split(".")[0]}


def collocation_hints(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Rucio's tape-metadata plugin signature: the transfer's metadata -> archive_metadata."""
    scope = metadata.get("scope")
    scope = str(getattr(scope, "external", scope) or "")
    name = str(metadata.get("name") or "")
    return {"collocation_hints": hints_for(scope, name)}
