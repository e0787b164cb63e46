"""JUNO's permission rules, consulted by Rucio before its generic ones.

`has_permission` decides the actions below and returns None for every other action, so Rucio's generic
rules apply to them. Root may do everything JUNO decides.

    writing DIDs      add_did, add_dids, attach_dids, attach_dids_to_dids, detach_dids, set_metadata,
                      set_metadata_bulk, set_status: the raw scope only by `rawdata`; mc and rec only by
                      `production`; user.<a> only by <a>. Other scopes (calib, group.*): Rucio's rule.
    writing replicas  add_replicas, update_replicas_states: allowed at an RSE where the account has a
                      positive quota (the scope check above still applies to the new files' DIDs).
    adding rules      add_rule: only for oneself; rules on raw DIDs only by `rawdata`; anybody may ask for a
                      rule of their own on mc, rec, calib or user data (Rucio enforces the quota).
    changing rules    del_rule, reduce_rule, move_rule, update_rule: a rule on raw data only by `rawdata`
                      (nobody else may reduce the raw copies); any other rule only by its owner, who may
                      change its lifetime, comment and lock; other options stay Rucio's (root/admin).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RAW_ACCOUNT = "rawdata"
PRODUCTION_ACCOUNT = "production"
OWNER_RULE_OPTIONS = frozenset({"lifetime", "comment", "locked"})


@dataclass(frozen=True)
class Decision:
    """Rucio reads `.allowed` and `.message` (its PermissionResult has the same shape)."""

    allowed: bool
    message: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)
Verdict = Decision | None


def _text(value: Any) -> str:
    """An InternalAccount/InternalScope or a plain string, as the name users see."""
    return str(getattr(value, "external", value))


def writer_problem(account: str, scope: str) -> str | None:
    """Why `account` may not write DIDs in `scope`, or None (also None for scopes JUNO leaves to Rucio)."""
    if account == "root":
        return None
    if scope == "raw" and account != RAW_ACCOUNT:
        return f"only the raw-data service account '{RAW_ACCOUNT}' writes the raw scope"
    if scope in ("mc", "rec") and account != PRODUCTION_ACCOUNT:
        return f"only the production account '{PRODUCTION_ACCOUNT}' writes the {scope} scope"
    if scope.startswith("user.") and scope != f"user.{account}":
        return f"{account} writes only its own scope user.{account}, not {scope}"
    return None


def _decided(scope: str) -> bool:
    return scope in ("raw", "mc", "rec") or scope.startswith("user.")


def _scopes_verdict(account: str, scopes: Iterable[str]) -> Verdict:
    decided = False
    for scope in scopes:
        problem = writer_problem(account, scope)
        if problem:
            return Decision(False, problem)
        decided = decided or _decided(scope)
    return ALLOW if decided else None


def _write_did(issuer: Any, kwargs: Mapping[str, Any], session: Any) -> Verdict:
    return _scopes_verdict(_text(issuer), [_text(kwargs.get("scope"))])


def _write_dids(issuer: Any, kwargs: Mapping[str, Any], session: Any) -> Verdict:
    return _scopes_verdict(_text(issuer), [_text(d.get("scope")) for d in kwargs.get("dids") or []])


def _attach_to_dids(issuer: Any, kwargs: Mapping[str, Any], session: Any) -> Verdict:
    return _scopes_verdict(_text(issuer), [_text(a.get("scope")) for a in kwargs.get("attachments") or []])


def _replicas(issuer: Any, kwargs: Mapping[str, Any], session: Any) -> Verdict:
    rse_id = kwargs.get("rse_id")
    if _text(issuer) == "root":
        return ALLOW
    if rse_id is None or session is None:
        return None
    from rucio.core.account_limit import get_local_account_limit

    limit = get_local_account_limit(account=issuer, rse_ids=rse_id, session=session)
    return ALLOW if limit is not None and limit > 0 else None


def _add_rule(issuer: Any, kwargs: Mapping[str, Any], session: Any) -> Verdict:
    account = _text(issuer)
    if account == "root":
        return ALLOW
    owner = _text(kwargs.get("account") or account)
    if owner != account:
        return Decision(False, f"{account} may add rules only for itself, not for {owner}")
    if kwargs.get("locked"):
        return None  # locked rules: Rucio's rule (root and admins)
    scopes = {_text(d.get("scope")) for d in kwargs.get("dids") or []}
    if "raw" in scopes and account != RAW_ACCOUNT:
        return Decision(False, f"only '{RAW_ACCOUNT}' places raw data; ask the data managers for a raw copy")
    return ALLOW


def _rule_change(action: str) -> Callable[[Any, Mapping[str, Any], Any], Verdict]:
    def decide(issuer: Any, kwargs: Mapping[str, Any], session: Any) -> Verdict:
        account = _text(issuer)
        if account == "root":
            return ALLOW
        rule_id = kwargs.get("rule_id")
        if rule_id is None or session is None:
            return None
        from rucio.common.exception import RuleNotFound
        from rucio.core.rule import get_rule

        try:
            rule = get_rule(rule_id=rule_id, session=session)
        except RuleNotFound:
            return None  # Rucio reports the missing rule itself
        owner, scope = _text(rule["account"]), _text(rule["scope"])
        if scope == "raw":
            if account == RAW_ACCOUNT:
                return ALLOW
            return Decision(False, f"only '{RAW_ACCOUNT}' or root may {action} a rule on raw data "
                                   "(the number of raw copies is the share policy's)")
        if owner != account:
            return Decision(False, f"rule {rule_id} belongs to {owner}; {account} may {action} only its own rules")
        if action == "update":
            options = set((kwargs.get("options") or {}).keys())
            if not options <= OWNER_RULE_OPTIONS:
                return None  # e.g. a change of owner or state: Rucio's rule (root and admins)
        return ALLOW

    return decide


RULES: dict[str, Callable[[Any, Mapping[str, Any], Any], Verdict]] = {
    "add_did": _write_did,
    "attach_dids": _write_did,
    "detach_dids": _write_did,
    "set_metadata": _write_did,
    "set_metadata_bulk": _write_did,
    "set_status": _write_did,
    "add_dids": _write_dids,
    "attach_dids_to_dids": _attach_to_dids,
    "add_replicas": _replicas,
    "update_replicas_states": _replicas,  # an upload marks its replica AVAILABLE
    "add_rule": _add_rule,
    "del_rule": _rule_change("delete"),
    "reduce_rule": _rule_change("reduce"),
    "move_rule": _rule_change("move"),
    "update_rule": _rule_change("update"),
}


def has_permission(issuer: Any, action: str, kwargs: dict[str, Any], *, session: Any = None) -> Verdict:
    """A Decision where JUNO decides `action`; None to let Rucio's generic rules decide."""
    rule = RULES.get(action)
    return None if rule is None else rule(issuer, kwargs, session)
