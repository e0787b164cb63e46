"""Where a file lives on every storage element: JUNO's lfn2pfn, and pfn2lfn back.

The path under an RSE's prefix follows from the name alone, so every SE holds a file at the same place:

    raw   raw/<YYYY>/<MMDD>/<run>/<name>                          RUN.001234.physics.00001.20261125.rtraw
                                                                  -> raw/2026/1125/001234/RUN.001234...rtraw
    mc    mc/<campaign>/<tag>/<step>/<job // 1000, 3 digits>/<name>  mc.J25.IBD.detsim.004217.root
                                                                  -> mc/J25/IBD/detsim/004/mc.J25...root
    rec   rec/<pass>/<YYYY>/<MMDD>/<run>/<name>
    other <scope with '.' as '/'>/<h[0:2]>/<h[2:4]>/<name>, h = md5("<scope>:<name>")
          (calib, user.<account>, group.<name>, and names in JUNO scopes that follow no JUNO pattern)

pfn2lfn reads a path back: the name is its last element, the scope its first element, or the first two
joined by '.' for user/ and group/.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from juno_rucio_policy.naming import BadName, parse


def _hashed(scope: str, name: str) -> str:
    digest = hashlib.md5(f"{scope}:{name}".encode(), usedforsecurity=False).hexdigest()
    return f"{scope.replace('.', '/')}/{digest[0:2]}/{digest[2:4]}/{name}"


def path_for(scope: str, name: str) -> str:
    """The path of `scope:name` under an RSE's prefix."""
    try:
        parsed = parse(scope, name, collection=False)
    except BadName:
        return _hashed(scope, name)
    f = parsed.fields
    if parsed.kind == "raw.file":
        d = f["date"]
        return f"raw/{d[:4]}/{d[4:]}/{f['run']}/{name}"
    if parsed.kind == "mc.file":
        return f"mc/{f['campaign']}/{f['tag']}/{f['step']}/{int(f['job']) // 1000:03d}/{name}"
    if parsed.kind == "rec.file":
        d = f["date"]
        return f"rec/{f['pass']}/{d[:4]}/{d[4:]}/{f['run']}/{name}"
    return _hashed(scope, name)


def lfn2pfn(scope: str, name: str, rse: str, rse_attrs: Mapping[str, Any], protocol_attrs: Mapping[str, Any]) -> str:
    """Rucio's lfn2pfn signature; the path does not depend on the RSE or protocol."""
    del rse, rse_attrs, protocol_attrs
    return path_for(scope, name)


def pfn2lfn(parsed_pfn: Mapping[str, str]) -> tuple[str, str]:
    """Rucio's pfn2lfn signature: {'path': ..., 'name': ...} -> (name, scope)."""
    name = parsed_pfn["name"]
    parts = [p for p in parsed_pfn["path"].split("/") if p]
    if not parts:
        raise ValueError(f"no scope in the path of {name!r}")
    scope = ".".join(parts[:2]) if parts[0] in ("user", "group") and len(parts) > 1 else parts[0]
    return name, scope
