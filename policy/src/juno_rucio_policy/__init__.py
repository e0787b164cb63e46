"""The JUNO Rucio policy package.

Rucio loads it by name (`[policy] package = juno_rucio_policy` in rucio.cfg, or RUCIO_POLICY_PACKAGE), on the
server and in clients alike, so it imports nothing of the juno_dcs daemons. This first version declares the
Rucio versions it supports and registers no algorithm of its own yet: naming, permissions, lfn2pfn and tape
metadata arrive with the policy issue, and until then the grid runs Rucio's generic policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SUPPORTED_VERSION = ">=41.0,<42.0"


def get_algorithms() -> dict[str, dict[str, Callable[..., Any]]]:
    """The algorithms this package registers with Rucio, by type and name."""
    return {}
