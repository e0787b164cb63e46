"""The blocks' summary's pure parts: what makes a block settled, and the key of its rules."""

from __future__ import annotations

from juno_dcs.ingest.status import BlockView, RuleView, SiteView
from juno_dcs.ingest.summary import rules_key, settled


def _rule(state: str = "OK", ok: int = 10, replicating: int = 0, stuck: int = 0,
          rule_id: str = "r1") -> dict[str, object]:
    return {"id": rule_id, "state": state, "locks_ok_cnt": ok, "locks_replicating_cnt": replicating,
            "locks_stuck_cnt": stuck}


def _view(state: str = "OK", ok: int = 10, replicating: int = 0, stuck: int = 0, rule_id: str = "r1",
          reason: str | None = None) -> RuleView:
    return RuleView(id=rule_id, rse_expression="IHEP_DISK", state=state, locks_ok=ok,
                    locks_replicating=replicating, locks_stuck=stuck, reason=reason)


def _block(state: str = "closed", rules: list[RuleView] | None = None) -> BlockView:
    details = rules or []
    site = SiteView(replicas=10, rses={"IHEP_DISK": 10}, rules=[d.state for d in details], rule_details=details)
    return BlockView(name="block.20200101.physics", state=state, files=10, bytes=100, sites={"IHEP": site})


def test_the_rules_key_ignores_order_and_follows_states_and_locks() -> None:
    a, b = _rule(rule_id="a"), _rule(rule_id="b", state="REPLICATING", ok=5, replicating=5)
    assert rules_key([a, b]) == rules_key([b, a])
    assert rules_key([a]) != rules_key([a, b]), "a new rule"
    assert rules_key([a]) != rules_key([_rule(rule_id="a", state="STUCK", ok=9, stuck=1)]), "a lost replica"
    assert rules_key([a]) != rules_key([_rule(rule_id="a", ok=11)]), "a later attachment's lock"
    assert rules_key([]) == rules_key(())


def test_settled_means_closed_with_every_rule_ok_for_every_file() -> None:
    assert settled(_block(rules=[_view()]))
    assert settled(_block(rules=[])), "closed and no rule: nothing moves until a rule comes"
    assert not settled(_block(state="open", rules=[_view()])), "files still arrive"
    assert not settled(_block(rules=[_view(), _view(rule_id="t", state="REPLICATING", ok=0, replicating=10)]))
    assert not settled(_block(rules=[_view(state="STUCK", ok=9, stuck=1)]))
    assert not settled(_block(rules=[_view(reason="OK for 9 of 10 files")])), "the judge has not seen them all"
