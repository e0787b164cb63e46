"""What rules a DID should have under the policies: `plan(did, policies, topology, ...)`, pure (no server).

    raw:block.<YYYYMMDD>.<stream>   one rule per raw.yaml template that applies to the block's day and stream
    mc:..., rec:...                 one rule per destination expression, with the data type's lifetime
    user.<account>:...              one rule owned by <account>, with user.yaml's lifetime and expression
    anything else                   NotPlannable (raw files, calib, group scopes), BadDid (not a JUNO name)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from juno_dcs.errors import ConfigError
from juno_dcs.placement.loader import Policies
from juno_dcs.placement.rse_expr import RSEExpressionError, evaluate
from juno_dcs.topology import Topology
from juno_rucio_policy.naming import BadName, Parsed, parse

COMMENT_PREFIX = "juno-policy "  # every rule the policy makes has a comment starting with this


class PlanError(ConfigError):
    """A DID, or an option given with it, that the policies cannot plan."""


class BadDid(PlanError):
    """Not scope:name, or not a JUNO name."""


class NotPlannable(PlanError):
    """A valid JUNO DID that the policy gives no rules (a raw file, calib or group data)."""


class PlannedRule(BaseModel):
    """One rule to make; the fields up to `comment` are Rucio's add_replication_rule arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: str
    name: str
    account: str
    rse_expression: str
    copies: int
    lifetime: int | None  # seconds; None: permanent
    source_replica_expression: str | None
    activity: str
    grouping: Literal["ALL", "DATASET", "NONE"]
    comment: str
    policy_rule: str  # the raw.yaml template, the production data type, or "user"
    after: str | None  # the policy_rule of this DID that must be OK (and the DID closed) first

    @property
    def did(self) -> str:
        return f"{self.scope}:{self.name}"


def split_did(did: str) -> tuple[str, str]:
    scope, sep, name = did.partition(":")
    if not sep or not scope or not name:
        raise BadDid(f"{did!r} is not a DID: write scope:name, e.g. raw:block.20260101.physics")
    return scope, name


def plan(did: str, policies: Policies, topology: Topology, *, destinations: list[str] | None = None,
         lifetime: int | None = None, rse_expression: str | None = None) -> list[PlannedRule]:
    """The rules `did` should have. `destinations` (mc, rec) and `rse_expression` (user data) replace the
    policy's default expressions; `lifetime` (seconds) replaces the data type's or user default lifetime."""
    scope, name = split_did(did)
    try:
        parsed = parse(scope, name)
    except BadName as exc:
        raise BadDid(str(exc)) from None
    if lifetime is not None and (isinstance(lifetime, bool) or lifetime <= 0):
        raise PlanError(f"lifetime must be a positive number of seconds, not {lifetime!r}")
    if scope == "raw":
        if destinations is not None or lifetime is not None or rse_expression is not None:
            raise PlanError("raw data follows raw.yaml only: destinations, lifetime and rse_expression do not apply")
        return _raw(parsed, policies)
    if scope in ("mc", "rec"):
        if rse_expression is not None:
            raise PlanError(f"{scope} data goes to destinations (one rule each), not to one rse_expression")
        return _production(parsed, policies, topology, destinations, lifetime)
    if scope.startswith("user."):
        if destinations is not None:
            raise PlanError("user data has one rule: give rse_expression, not destinations")
        return _user(parsed, policies, topology, rse_expression, lifetime)
    raise NotPlannable(f"{did}: the policy has no rules for {parsed.data_type} data; place it with your own rules")


def _raw(parsed: Parsed, policies: Policies) -> list[PlannedRule]:
    day, stream = parsed.day, parsed.fields.get("stream")
    if parsed.kind != "raw.block" or day is None or stream is None:
        raise NotPlannable(f"raw:{parsed.name} is a raw file: the policy places whole daily blocks "
                           "(raw:block.<YYYYMMDD>.<stream>), whose rules cover their files")
    raw = policies.raw
    return [
        PlannedRule(
            scope=parsed.scope, name=parsed.name, account=raw.account, rse_expression=t.rse_expression,
            copies=t.copies, lifetime=raw.lifetime_of(t), source_replica_expression=t.source_replica_expression,
            activity=t.activity, grouping=t.grouping, comment=f"{COMMENT_PREFIX}raw:{t.name}", policy_rule=t.name,
            after=t.after,
        )
        for t in raw.rules if t.applies_to(day, stream)
    ]


def _production(parsed: Parsed, policies: Policies, topology: Topology, destinations: list[str] | None,
                lifetime: int | None) -> list[PlannedRule]:
    production = policies.production
    entry = production.data_types.get(parsed.data_type)
    if entry is None:
        raise NotPlannable(f"{parsed.scope}:{parsed.name}: production.yaml has no data type {parsed.data_type!r}")
    if destinations is not None and not destinations:
        raise PlanError("destinations is empty: give at least one RSE expression, or none for the default")
    chosen = list(dict.fromkeys(destinations or production.destinations))
    for expression in chosen:
        _check_expression(expression, topology, "destination")
    return [
        PlannedRule(
            scope=parsed.scope, name=parsed.name, account=production.account, rse_expression=expression, copies=1,
            lifetime=lifetime if lifetime is not None else entry.lifetime, source_replica_expression=None,
            activity=entry.activity, grouping=entry.grouping,
            comment=f"{COMMENT_PREFIX}production:{parsed.data_type}@{expression}", policy_rule=parsed.data_type,
            after=None,
        )
        for expression in chosen
    ]


def _user(parsed: Parsed, policies: Policies, topology: Topology, rse_expression: str | None,
          lifetime: int | None) -> list[PlannedRule]:
    account = parsed.scope.removeprefix("user.")
    known = topology.accounts.get(account)
    if known is None or known.type != "USER":
        raise NotPlannable(f"{parsed.scope}:{parsed.name}: {account!r} is not a USER account of the topology")
    user = policies.user
    expression = rse_expression if rse_expression is not None else user.rse_expression
    _check_expression(expression, topology, "rse_expression")
    return [PlannedRule(
        scope=parsed.scope, name=parsed.name, account=account, rse_expression=expression, copies=1,
        lifetime=lifetime if lifetime is not None else user.lifetime, source_replica_expression=None,
        activity=user.activity, grouping=user.grouping, comment=f"{COMMENT_PREFIX}user:user@{expression}",
        policy_rule="user", after=None,
    )]


def _check_expression(expression: str, topology: Topology, what: str) -> None:
    try:
        selected = evaluate(expression, topology)
    except RSEExpressionError as exc:
        raise PlanError(f"bad {what}: {exc}") from None
    if not selected:
        raise PlanError(f"bad {what}: {expression!r} matches no RSE of the topology")
