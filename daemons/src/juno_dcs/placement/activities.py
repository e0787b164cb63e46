"""The transfer activities a rule may name: JUNO's own and Rucio's generic ones.

The grid's Rucio uses juno_rucio_policy.schema, whose activity list is Rucio's generic list plus
naming.JUNO_ACTIVITIES; the same union is accepted here. Rucio's list is read from the source of
rucio.common.schema.generic rather than imported, because importing Rucio's schema package needs a
rucio.cfg, and checking policy files must work without a grid.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path

from juno_rucio_policy.naming import JUNO_ACTIVITIES


@functools.cache
def rucio_activities() -> tuple[str, ...]:
    """Rucio's generic ACTIVITY enum, or () if this Rucio does not have one where expected."""
    spec = importlib.util.find_spec("rucio")
    if spec is None or not spec.submodule_search_locations:
        return ()
    source = Path(next(iter(spec.submodule_search_locations))) / "common" / "schema" / "generic.py"
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return ()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ACTIVITY" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return ()
            enum = value.get("enum", []) if isinstance(value, dict) else []
            return tuple(str(a) for a in enum)
    return ()


def known_activities() -> tuple[str, ...]:
    """JUNO's activities first, then Rucio's that JUNO does not repeat."""
    return JUNO_ACTIVITIES + tuple(a for a in rucio_activities() if a not in JUNO_ACTIVITIES)


def activity_problem(activity: str) -> str | None:
    """Why `activity` may not be used on a rule, or None."""
    if activity in known_activities():
        return None
    rucio = ", ".join(a for a in known_activities() if a not in JUNO_ACTIVITIES)
    return f"unknown activity {activity!r} (JUNO's: {', '.join(JUNO_ACTIVITIES)}; Rucio's: {rucio})"
