"""JUNO's permission rules, consulted by Rucio before its generic ones.

`has_permission` answers True or False only for the actions JUNO decides; for every other action it
returns None and Rucio's generic rules apply. This first rule set covers writing replicas: an account
may add replicas, and set their states, at an RSE where the grid gave it a positive quota (e.g. the raw-data service at
IHEP_DISK), since Rucio's generic rule admits only root, admins and *SCRATCHDISK-like RSEs. Which scopes
an account may write is still Rucio's scope-ownership rule. The full JUNO table (raw scope, copies,
users' data) comes with the policy issue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _root(issuer: Any) -> bool:
    return str(getattr(issuer, "external", issuer)) == "root"


def _has_positive_quota(issuer: Any, kwargs: dict[str, Any], session: Any) -> bool | None:
    rse_id = kwargs.get("rse_id")
    if _root(issuer) or rse_id is None:
        return None
    from rucio.core.account_limit import get_local_account_limit

    limit = get_local_account_limit(account=issuer, rse_ids=rse_id, session=session)
    return True if limit is not None and limit > 0 else None


RULES: dict[str, Callable[[Any, dict[str, Any], Any], bool | None]] = {
    "add_replicas": _has_positive_quota,
    "update_replicas_states": _has_positive_quota,  # an upload marks its replica AVAILABLE
}


def has_permission(issuer: Any, action: str, kwargs: dict[str, Any], *, session: Any = None) -> bool | None:
    """True or False where JUNO decides `action`; None to let Rucio's generic rules decide."""
    rule = RULES.get(action)
    return None if rule is None else rule(issuer, kwargs, session)
