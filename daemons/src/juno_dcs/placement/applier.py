"""Make the planned rules of a DID in Rucio, idempotently: `apply(client, did, policies, topology, ...)`.

The decision is a pure function, `decide(planned, existing, did_open)`: a planned rule already there (same
comment, or same account, expression and copies: what Rucio calls a duplicate) is "existing"; a rule with
`after` is made only when the DID is closed and its prerequisite exists in state OK, else it is "waiting" with
the reason; every other rule is created. `apply` reads the DID and its rules, decides, and creates; a
DuplicateRule from Rucio (another applier was quicker) counts as existing. Applying twice creates nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from juno_dcs.errors import ConfigError
from juno_dcs.placement.loader import Policies
from juno_dcs.placement.planner import PlannedRule, plan, split_did
from juno_dcs.topology import Topology

# A rule on a closed DID of this many files or more is handed to Rucio's judge-injector (Rucio's asynchronous
# rules): the call returns once the rule is recorded, and the judge makes its locks and transfer requests. Made in
# the call, a T1 disk rule on a 1,000-file block took about 2 s of the Rucio server (a lock and a request per
# file), and `placement apply` of a block's four disk rules 8 s. Rucio itself does so from 10,000 files. An open
# dataset's rules stay synchronous: Rucio's injection is for closed DIDs only.
ASYNC_FROM_FILES = 100

Client = Any  # rucio.client.Client (untyped)
Notify = Literal["N", "Y", "C", "P"]  # Rucio's rule notification: none, yes, on close, progress


class DidNotFound(ConfigError):
    """The DID to apply the policy to does not exist in Rucio."""


class ExistingRule(BaseModel):
    """The parts of a Rucio rule (list_did_rules) that the decision needs."""

    model_config = ConfigDict(frozen=True)

    id: str
    account: str
    rse_expression: str
    copies: int
    state: str
    comment: str | None = None
    locks_ok: int = 0

    @classmethod
    def from_rucio(cls, rule: Mapping[str, Any]) -> ExistingRule:
        comment = rule.get("comments", rule.get("comment"))
        return cls(id=str(rule["id"]), account=str(rule["account"]), rse_expression=str(rule["rse_expression"]),
                   copies=int(rule["copies"]), state=str(rule["state"]), comment=comment,
                   locks_ok=int(rule.get("locks_ok_cnt") or 0))


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: PlannedRule
    action: Literal["create", "existing", "waiting"]
    rule_id: str | None = None
    reason: str | None = None


class RuleOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy_rule: str
    status: Literal["created", "existing", "waiting"]
    rule_id: str | None
    reason: str | None
    rule: PlannedRule


class ApplyReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    did: str
    outcomes: list[RuleOutcome]

    def _with(self, status: str) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def created(self) -> list[RuleOutcome]:
        return self._with("created")

    @property
    def existing(self) -> list[RuleOutcome]:
        return self._with("existing")

    @property
    def waiting(self) -> list[RuleOutcome]:
        return self._with("waiting")

    @property
    def done(self) -> bool:
        """Every planned rule exists (none waiting)."""
        return not self.waiting


def match(rule: PlannedRule, existing: list[ExistingRule]) -> ExistingRule | None:
    """The existing rule that is `rule`: same comment first, else what Rucio would call a duplicate."""
    for candidate in existing:
        if candidate.comment == rule.comment:
            return candidate
    for candidate in existing:
        if (candidate.account, candidate.rse_expression, candidate.copies) == (
                rule.account, rule.rse_expression, rule.copies):
            return candidate
    return None


def decide(planned: list[PlannedRule], existing: list[ExistingRule], did_open: bool,
           did_files: int | None = None) -> list[Decision]:
    """What to do with each planned rule, given the DID's rules, whether the DID is open and how many files it
    holds (pure). A prerequisite counts as done when it is OK with a lock for each of `did_files`: a rule on a
    dataset is briefly OK after files were attached, until Rucio's judge has given them their locks."""
    by_rule = {r.policy_rule: r for r in planned}
    decisions = []
    for rule in planned:
        found = match(rule, existing)
        if found is not None:
            decisions.append(Decision(rule=rule, action="existing", rule_id=found.id))
            continue
        reasons = _wait_reasons(rule, by_rule, existing, did_open, did_files)
        if reasons:
            decisions.append(Decision(rule=rule, action="waiting", reason="waiting: " + "; ".join(reasons)))
        else:
            decisions.append(Decision(rule=rule, action="create"))
    return decisions


def _wait_reasons(rule: PlannedRule, by_rule: Mapping[str, PlannedRule], existing: list[ExistingRule],
                  did_open: bool, did_files: int | None) -> list[str]:
    if rule.after is None:
        return []
    reasons = ["block still open"] if did_open else []
    first = by_rule.get(rule.after)
    found = match(first, existing) if first is not None else None
    if first is None:
        reasons.append(f"rule {rule.after} is not planned for this DID")
    elif found is None:
        reasons.append(f"rule {rule.after} is not created yet")
    elif found.state != "OK":
        reasons.append(f"rule {rule.after} ({found.id}) is {found.state}")
    elif did_files is not None and found.locks_ok < did_files:
        reasons.append(f"rule {rule.after} ({found.id}) has {found.locks_ok} of {did_files} files")
    return reasons


def apply(client: Client, did: str, policies: Policies, topology: Topology, *,
          client_for: Callable[[str], Client] | None = None, destinations: list[str] | None = None,
          lifetime: int | None = None, rse_expression: str | None = None, notify: Notify = "N") -> ApplyReport:
    """Create the planned rules of `did` that are missing and may be made now. `client` reads the DID and
    its rules; each rule is created by `client_for(rule.account)` (default: `client`, which must then be
    allowed to create rules for the planned accounts, e.g. root). The options are those of `plan`, and
    `notify`, Rucio's notification of the rules made ("Y": a RULE_OK event, through hermes, each time the rule
    becomes OK, as when a new file of the dataset is at its RSE)."""
    from rucio.common.exception import DataIdentifierNotFound, DuplicateRule

    planned = plan(did, policies, topology, destinations=destinations, lifetime=lifetime,
                   rse_expression=rse_expression)
    scope, name = split_did(did)
    try:
        info = client.get_did(scope, name, dynamic_depth="FILE")  # the files of an open dataset too
    except DataIdentifierNotFound:
        raise DidNotFound(f"{did}: no such DID in Rucio") from None
    did_open = bool(info.get("open", False))  # files have no 'open': they are never open
    did_files = int(info.get("length") or 0) if info.get("type") != "FILE" else 1
    existing = _existing(client, scope, name)
    outcomes = []
    for decision in decide(planned, existing, did_open, did_files):
        rule = decision.rule
        if decision.action != "create":
            outcomes.append(RuleOutcome(policy_rule=rule.policy_rule, status=decision.action,
                                        rule_id=decision.rule_id, reason=decision.reason, rule=rule))
            continue
        creator = client_for(rule.account) if client_for is not None else client
        rule_id: str | None
        status: Literal["created", "existing"]
        try:
            rule_id, status = create_rule(creator, rule, notify,
                                          asynchronous=not did_open and did_files >= ASYNC_FROM_FILES), "created"
        except DuplicateRule:
            found = match(rule, _existing(client, scope, name))
            rule_id, status = (found.id if found else None), "existing"
        outcomes.append(RuleOutcome(policy_rule=rule.policy_rule, status=status, rule_id=rule_id, reason=None,
                                    rule=rule))
    return ApplyReport(did=did, outcomes=outcomes)


def create_rule(client: Client, rule: PlannedRule, notify: Notify = "N", asynchronous: bool = False) -> str:
    """Rucio's add_replication_rule with the planned rule's arguments; the new rule's id. `asynchronous`: Rucio
    records the rule (state INJECT) and its judge-injector makes the locks and transfer requests."""
    ids = client.add_replication_rule(
        dids=[{"scope": rule.scope, "name": rule.name}], copies=rule.copies, rse_expression=rule.rse_expression,
        lifetime=rule.lifetime, grouping=rule.grouping, source_replica_expression=rule.source_replica_expression,
        activity=rule.activity, account=rule.account, comment=rule.comment, notify=notify,
        asynchronous=asynchronous,
    )
    return str(ids[0])


def _existing(client: Client, scope: str, name: str) -> list[ExistingRule]:
    return [ExistingRule.from_rucio(r) for r in client.list_did_rules(scope, name)]
