"""The policy engine without a server: RSE expressions, the raw share, plans of every kind of DID, the
decision of apply (and apply itself on a stand-in client), default user quotas, and `juno-dcs placement plan`."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rucio.common.exception import DuplicateRule

from juno_dcs.cli import main
from juno_dcs.packaged import data_file
from juno_dcs.placement import (
    BadDid,
    ExistingRule,
    NotPlannable,
    PlanError,
    PlannedRule,
    Policies,
    RSEExpressionError,
    apply,
    decide,
    default_user_quotas,
    evaluate,
    load_policies,
    plan,
)
from juno_dcs.placement.durations import DurationError, format_duration, parse_duration
from juno_dcs.placement.models import RuleTemplate, Selection
from juno_dcs.topology import Topology, load_topology
from juno_rucio_policy.naming import block_name

CHECKOUT = Path(__file__).resolve().parents[2]
TOPOLOGY = data_file("topology.yaml")
POLICY_DIR = data_file("placement")
DAY = 86400


@pytest.fixture(scope="module")
def topo() -> Topology:
    return load_topology(TOPOLOGY)


@pytest.fixture(scope="module")
def policies() -> Policies:
    return load_policies(POLICY_DIR)


# --- RSE expressions

@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("IHEP_DISK", ["IHEP_DISK"]),
        ("*", ["CNAF_DISK", "CNAF_TAPE", "IHEP_DISK", "IHEP_TAPE", "IN2P3_DISK", "IN2P3_TAPE", "JINR_DISK",
               "JINR_TAPE", "MSU_DISK"]),
        ("type=TAPE", ["CNAF_TAPE", "IHEP_TAPE", "IN2P3_TAPE", "JINR_TAPE"]),
        ("tier=1&type=DISK", ["CNAF_DISK", "IN2P3_DISK", "JINR_DISK", "MSU_DISK"]),
        ("site=IHEP", ["IHEP_DISK", "IHEP_TAPE"]),
        ("country=RU&type=DISK", ["JINR_DISK", "MSU_DISK"]),
        ("tier<1", ["IHEP_DISK", "IHEP_TAPE"]),
        ("tier>0&type=TAPE", ["CNAF_TAPE", "IN2P3_TAPE", "JINR_TAPE"]),
        ("CNAF_DISK|JINR_DISK", ["CNAF_DISK", "JINR_DISK"]),
        ("type=DISK\\site=IHEP", ["CNAF_DISK", "IN2P3_DISK", "JINR_DISK", "MSU_DISK"]),
        ("*\\type=TAPE\\tier=1", ["IHEP_DISK"]),
        # no precedence: left to right, as Rucio
        ("IHEP_DISK|CNAF_DISK&type=TAPE", []),
        ("IHEP_DISK|(CNAF_DISK&type=TAPE)", ["IHEP_DISK"]),
        ("type=TAPE&site=CNAF|IHEP_DISK", ["CNAF_TAPE", "IHEP_DISK"]),
        ("type=TAPE&(site=CNAF|IHEP_DISK)", ["CNAF_TAPE"]),
        ("((site=JINR))&type=DISK", ["JINR_DISK"]),
        ("(site=IN2P3|site=CNAF)\\(type=TAPE)", ["CNAF_DISK", "IN2P3_DISK"]),
        ("rse_type=TAPE&country=FR", ["IN2P3_TAPE"]),
        ("rse=MSU_DISK", ["MSU_DISK"]),
        ("site=NOWHERE", []),
        ("tier=5", []),
    ],
)
def test_rse_expressions(topo: Topology, expression: str, expected: list[str]) -> None:
    assert evaluate(expression, topo) == expected


@pytest.mark.parametrize(
    ("expression", "reason", "position"),
    [
        ("", "the expression is empty", 0),
        ("IHEP_DISK|", "expected an RSE, attribute or '(' at the end", 10),
        ("IHEP_DISK||CNAF_DISK", "expected an RSE name, key=value, '*' or '(', found '|'", 10),
        ("(IHEP_DISK", "unbalanced '(': no matching ')'", 0),
        ("IHEP_DISK)", "unbalanced ')'", 9),
        ("IHEP_DISK CNAF_DISK", "expected an operator", 9),
        (" IHEP_DISK", "Rucio expressions have no spaces", 0),
        ("type!=TAPE", "Rucio has no '!='; write *\\type=TAPE", 4),
        ("tier=", "expected a value after tier=", 5),
        ("&IHEP_DISK", "found '&'", 0),
        ("IHEP__DISK", "expected an operator", 4),
        ("()", "found ')'", 1),
        ("IHEP_DISK(CNAF_DISK)", "expected an operator", 9),
    ],
)
def test_rse_expression_syntax_errors(topo: Topology, expression: str, reason: str, position: int) -> None:
    with pytest.raises(RSEExpressionError) as caught:
        evaluate(expression, topo)
    assert reason in caught.value.reason
    assert caught.value.position == position
    assert f"at position {position} in expression {expression!r}" in str(caught.value)


@pytest.mark.parametrize(
    ("expression", "unknown"),
    [("CERN_DISK", "CERN_DISK"), ("IHEP_DISK|speed>3", "speed"), ("colour=red&type=DISK", "colour"),
     ("(site=IHEP)\\IHEP_DISKS", "IHEP_DISKS")],
)
def test_rse_expression_unknown_names(topo: Topology, expression: str, unknown: str) -> None:
    with pytest.raises(RSEExpressionError) as caught:
        evaluate(expression, topo)
    assert str(caught.value) == f"unknown RSE or attribute {unknown!r} in expression {expression!r}"


def test_rse_expression_compares_numbers(topo: Topology) -> None:
    with pytest.raises(RSEExpressionError, match="'<' compares with a number"):
        evaluate("tier<one", topo)
    table = {"A": {"A": True, "speed": "10", "fast": True}, "B": {"B": True, "speed": "x", "fast": False}}
    assert evaluate("speed>5", table) == ["A"]  # a non-number is left out, as Rucio
    assert evaluate("fast", table) == ["A"]  # a bare name: a true boolean attribute
    assert evaluate("fast=false", table) == ["B"]


# --- durations

@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, None), (3600, 3600), ("3600 s", 3600), ("90 days", 90 * DAY), ("12 hours", 43200), ("1 day", DAY),
     ("2 weeks", 14 * DAY), ("1.5 h", 5400), ("30min", 1800), ("7 D", 7 * DAY)],
)
def test_durations(value: Any, seconds: int | None) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(("value", "reason"), [
    ("90 dayz", "unknown unit"), ("soon", "not a duration"), (0, "must be positive"), ("-1 day", "not a duration"),
    (True, "not true/false"), ("0.5 s", "whole number"), (1.5, "not a float"),
])
def test_bad_durations(value: Any, reason: str) -> None:
    with pytest.raises(DurationError, match=reason):
        parse_duration(value)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (None, DAY, 90 * DAY, 7200, 120, 61)] == [
        "permanent", "1 day", "90 days", "2 h", "2 min", "61 s"]


# --- the raw share

def _days(start: date, count: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(count)]


def test_share_over_30_days(policies: Policies, topo: Topology) -> None:
    counts: Counter[str] = Counter()
    for day in _days(date(2026, 3, 17), 30):
        rules = plan(f"raw:{block_name(day, 'physics')}", policies, topo)
        counts.update(r.policy_rule for r in rules)
        assert all(r.account == "rawdata" and r.scope == "raw" for r in rules)
    assert counts == {"ihep-disk": 30, "ihep-tape": 30, "cnaf-disk": 30, "cnaf-tape": 30, "jinr-disk": 30,
                      "jinr-tape": 30, "in2p3-disk": 10, "in2p3-tape": 10}


def test_share_is_stable_under_replay(policies: Policies, topo: Topology) -> None:
    days = _days(date(2027, 12, 20), 40)
    dids = [f"raw:{block_name(day, stream)}" for day in days for stream in ("physics", "calib")]
    first = {did: plan(did, policies, topo) for did in dids}
    shuffled = dids[:]
    random.Random(7).shuffle(shuffled)  # noqa: S311  (an order, not a secret)
    assert {did: plan(did, policies, topo) for did in shuffled} == first
    for day in _days(date(2027, 12, 20), 40):  # all streams of a day go together
        physics, calib = (first[f"raw:{block_name(day, s)}"] for s in ("physics", "calib"))
        assert [r.policy_rule for r in physics] == [r.policy_rule for r in calib]


def test_any_three_consecutive_days_have_one_in2p3_block(policies: Policies, topo: Topology) -> None:
    days = _days(date(2025, 12, 1), 400)
    selected = [any(r.policy_rule == "in2p3-disk" for r in plan(f"raw:{block_name(d, 'physics')}", policies, topo))
                for d in days]
    for i in range(len(days) - 2):
        assert sum(selected[i:i + 3]) == 1, days[i]
    assert selected == [d.toordinal() % 3 == 0 for d in days]  # the documented rule


def test_selection_and_streams() -> None:
    share = Selection(one_in=4, offset=1)
    assert [share.selects(d) for d in _days(date.fromordinal(8), 4)] == [False, True, False, False]
    template = RuleTemplate(name="t", rse_expression="CNAF_DISK", activity="Raw Export", streams=["physics"],
                            select=share)
    assert template.applies_to(date.fromordinal(9), "physics")
    assert not template.applies_to(date.fromordinal(9), "calib")
    assert not template.applies_to(date.fromordinal(10), "physics")


def test_raw_plan_details(policies: Policies, topo: Topology) -> None:
    rules = {r.policy_rule: r for r in plan("raw:block.20260101.physics", policies, topo)}
    assert date(2026, 1, 1).toordinal() % 3 == 0
    tape, disk = rules["cnaf-tape"], rules["cnaf-disk"]
    assert disk.lifetime == 90 * DAY
    assert disk.activity == "Raw Export"
    assert disk.after is None
    assert (tape.lifetime, tape.source_replica_expression, tape.activity, tape.after) == (
        None, "CNAF_DISK", "Tape Archival", "cnaf-disk")
    assert tape.comment == "juno-policy raw:cnaf-tape"
    assert rules["ihep-disk"].lifetime is None
    assert set(PlannedRule.model_fields) >= {"scope", "name", "account", "rse_expression", "copies", "lifetime",
                                             "source_replica_expression", "activity", "grouping", "comment"}


# --- mc, rec and user data; refusals

def test_mc_and_rec_plans(policies: Policies, topo: Topology) -> None:
    [rule] = plan("mc:mc.J25.IBD.detsim", policies, topo)
    assert (rule.account, rule.rse_expression, rule.copies, rule.lifetime, rule.activity) == (
        "production", "IHEP_DISK", 1, 180 * DAY, "Production Output")
    assert rule.comment == "juno-policy production:mc.detsim@IHEP_DISK"
    rules = plan("mc:mc.J25.IBD.rec", policies, topo, destinations=["IHEP_DISK", "tier=1&type=DISK", "IHEP_DISK"])
    assert [(r.rse_expression, r.lifetime) for r in rules] == [("IHEP_DISK", None), ("tier=1&type=DISK", None)]
    assert len({r.comment for r in rules}) == 2
    [log] = plan("mc:mc.J25.IBD.detsim.log", policies, topo, lifetime=3600)
    assert (log.policy_rule, log.lifetime) == ("log", 3600)
    assert plan("mc:mc.J25.IBD", policies, topo)[0].policy_rule == "mc.rec"  # a production's container
    [rec] = plan("rec:rec.P1.block.20260101.physics", policies, topo)
    assert (rec.policy_rule, rec.lifetime, rec.account) == ("rec", None, "production")
    assert plan("rec:rec.P1.block.20260101.physics.log", policies, topo)[0].lifetime == 90 * DAY


def test_user_plans(policies: Policies, topo: Topology) -> None:
    [rule] = plan("user.alice:ana.2026.root", policies, topo)
    assert (rule.account, rule.rse_expression, rule.lifetime, rule.activity) == (
        "alice", "IHEP_DISK", 180 * DAY, "User Analysis")
    [other] = plan("user.alice:ana.2026.root", policies, topo, rse_expression="CNAF_DISK", lifetime=DAY)
    assert (other.rse_expression, other.lifetime) == ("CNAF_DISK", DAY)
    assert other.comment != rule.comment


@pytest.mark.parametrize(
    ("did", "options", "error", "message"),
    [
        ("raw:RUN.001234.physics.00007.20261125.rtraw", {}, NotPlannable, "is a raw file"),
        ("raw:block.20260231.physics", {}, BadDid, "not a calendar date"),
        ("raw:block.2026-01-01.physics", {}, BadDid, "is not a JUNO raw name"),
        ("block.20260101.physics", {}, BadDid, "is not a DID: write scope:name"),
        ("RAW:block.20260101.physics", {}, BadDid, "is not a JUNO scope"),
        ("mc:mc.J25.IBD.simulate", {}, BadDid, "is not a JUNO mc name"),
        ("calib:pmt.gains.2026", {}, NotPlannable, "no rules for calib data"),
        ("group.solar:sn.2026", {}, NotPlannable, "no rules for group data"),
        ("user.carol:x.root", {}, NotPlannable, "'carol' is not a USER account"),
        ("user.rawdata:x.root", {}, NotPlannable, "'rawdata' is not a USER account"),
        ("raw:block.20260101.physics", {"destinations": ["CNAF_DISK"]}, PlanError, "raw data follows raw.yaml"),
        ("raw:block.20260101.physics", {"lifetime": 10}, PlanError, "raw data follows raw.yaml"),
        ("mc:mc.J25.IBD.rec", {"rse_expression": "CNAF_DISK"}, PlanError, "not to one rse_expression"),
        ("mc:mc.J25.IBD.rec", {"destinations": ["CERN"]}, PlanError, "unknown RSE or attribute 'CERN'"),
        ("mc:mc.J25.IBD.rec", {"destinations": ["tier=2"]}, PlanError, "matches no RSE"),
        ("mc:mc.J25.IBD.rec", {"destinations": []}, PlanError, "destinations is empty"),
        ("mc:mc.J25.IBD.rec", {"lifetime": 0}, PlanError, "positive number of seconds"),
        ("user.alice:x.root", {"destinations": ["CNAF_DISK"]}, PlanError, "give rse_expression"),
        ("user.alice:x.root", {"rse_expression": "CNAF_DISK|"}, PlanError, "bad rse_expression"),
    ],
)
def test_refused_dids(policies: Policies, topo: Topology, did: str, options: dict[str, Any], error: type[Exception],
                      message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        plan(did, policies, topo, **options)


# --- default user quotas

def test_default_user_quotas(policies: Policies, topo: Topology) -> None:
    tb = 10**12
    # the topology sets IHEP_DISK for alice and bob; dave has no quota of his own
    assert default_user_quotas(topo, policies.user) == {"dave": {"IHEP_DISK": tb}}


# --- the decision of apply

def _rule(policy_rule: str, after: str | None = None) -> PlannedRule:
    return PlannedRule(scope="raw", name="block.20260101.physics", account="rawdata",
                       rse_expression=policy_rule.upper(), copies=1, lifetime=None,
                       source_replica_expression=None, activity="Raw Export",
                       grouping="DATASET", comment=f"juno-policy raw:{policy_rule}", policy_rule=policy_rule,
                       after=after)


def _existing(rule: PlannedRule, state: str = "OK", rule_id: str = "", comment: str | None = "same") -> ExistingRule:
    return ExistingRule(id=rule_id or f"id-{rule.policy_rule}", account=rule.account,
                        rse_expression=rule.rse_expression, copies=rule.copies, state=state,
                        comment=rule.comment if comment == "same" else comment)


DISK, TAPE = _rule("cnaf-disk"), _rule("cnaf-tape", after="cnaf-disk")


@pytest.mark.parametrize(
    ("existing", "did_open", "expected"),
    [
        ([], True, [("create", None), ("waiting", "waiting: block still open; rule cnaf-disk is not created yet")]),
        ([], False, [("create", None), ("waiting", "waiting: rule cnaf-disk is not created yet")]),
        ([_existing(DISK, "REPLICATING")], False,
         [("existing", None), ("waiting", "waiting: rule cnaf-disk (id-cnaf-disk) is REPLICATING")]),
        ([_existing(DISK, "OK")], True, [("existing", None), ("waiting", "waiting: block still open")]),
        ([_existing(DISK, "STUCK")], False,
         [("existing", None), ("waiting", "waiting: rule cnaf-disk (id-cnaf-disk) is STUCK")]),
        ([_existing(DISK, "OK")], False, [("existing", None), ("create", None)]),
        ([_existing(DISK, "OK"), _existing(TAPE, "REPLICATING")], True, [("existing", None), ("existing", None)]),
        # made by hand without the comment: Rucio would call a new one a duplicate
        ([_existing(DISK, "OK", comment=None)], False, [("existing", None), ("create", None)]),
        # another account's rule at the same RSE is not ours
        ([ExistingRule(id="x", account="root", rse_expression="CNAF-DISK", copies=1, state="OK")], False,
         [("create", None), ("waiting", "waiting: rule cnaf-disk is not created yet")]),
    ],
)
def test_decide(existing: list[ExistingRule], did_open: bool, expected: list[tuple[str, str | None]]) -> None:
    decisions = decide([DISK, TAPE], existing, did_open)
    assert [(d.action, d.reason) for d in decisions] == expected
    assert all(d.rule_id is not None for d in decisions if d.action == "existing")


def test_decide_waits_for_the_locks_of_every_file() -> None:
    disk_ok = _existing(DISK, "OK").model_copy(update={"locks_ok": 7})
    decisions = decide([DISK, TAPE], [disk_ok], did_open=False, did_files=10)
    assert [(d.action, d.reason) for d in decisions][1] == (
        "waiting", "waiting: rule cnaf-disk (id-cnaf-disk) has 7 of 10 files")
    decisions = decide([DISK, TAPE], [disk_ok.model_copy(update={"locks_ok": 10})], did_open=False, did_files=10)
    assert decisions[1].action == "create"


def test_decide_prerequisite_not_planned() -> None:
    [decision] = decide([TAPE], [], did_open=False)
    assert decision.reason == "waiting: rule cnaf-disk is not planned for this DID"


class StandInClient:
    """Just enough of rucio.client.Client for apply: one DID, its rules, DuplicateRule on a second rule."""

    def __init__(self, account: str, rules: list[dict[str, Any]], state: dict[str, bool]) -> None:
        self.account, self.rules, self.state = account, rules, state

    def get_did(self, scope: str, name: str, dynamic_depth: str | None = None) -> dict[str, Any]:
        assert dynamic_depth == "FILE"  # an open dataset's length is counted only to its files
        return {"scope": scope, "name": name, "type": "DATASET", "open": self.state["open"], "length": 0}

    def list_did_rules(self, scope: str, name: str) -> list[dict[str, Any]]:
        return list(self.rules)

    def add_replication_rule(self, dids: list[dict[str, str]], copies: int, rse_expression: str,
                             **kwargs: Any) -> list[str]:
        assert kwargs["account"] == self.account  # each rule is made by its owner
        if any(r["rse_expression"] == rse_expression and r["account"] == kwargs["account"] for r in self.rules):
            raise DuplicateRule("a rule with these options exists")
        rule_id = f"r{len(self.rules)}"
        self.rules.append({"id": rule_id, "account": kwargs["account"], "rse_expression": rse_expression,
                           "copies": copies, "state": "REPLICATING", "comments": kwargs["comment"]})
        return [rule_id]


def test_apply_is_idempotent_and_waits_for_the_disk_copy(policies: Policies, topo: Topology) -> None:
    rules: list[dict[str, Any]] = []
    state = {"open": True}
    clients: dict[str, StandInClient] = {}

    def client_for(account: str) -> StandInClient:
        return clients.setdefault(account, StandInClient(account, rules, state))

    did = "raw:block.20260101.physics"
    first = apply(client_for("rawdata"), did, policies, topo, client_for=client_for)
    assert [o.policy_rule for o in first.created] == ["ihep-disk", "ihep-tape", "cnaf-disk", "jinr-disk",
                                                      "in2p3-disk"]  # IHEP's tape reads from the upload disk
    assert {o.reason for o in first.waiting} == {"waiting: block still open; rule cnaf-disk is not created yet",
                                                 "waiting: block still open; rule jinr-disk is not created yet",
                                                 "waiting: block still open; rule in2p3-disk is not created yet"}
    assert not first.done
    again = apply(client_for("rawdata"), did, policies, topo, client_for=client_for)
    assert again.created == []
    assert len(again.existing) == 5
    assert len(rules) == 5
    state["open"] = False
    rules[2]["state"] = "OK"  # cnaf-disk
    third = apply(client_for("rawdata"), did, policies, topo, client_for=client_for)
    assert [o.policy_rule for o in third.created] == ["cnaf-tape"]
    assert {o.reason for o in third.waiting} == {"waiting: rule jinr-disk (r3) is REPLICATING",
                                                 "waiting: rule in2p3-disk (r4) is REPLICATING"}
    for rule in rules:
        rule["state"] = "OK"
    fourth = apply(client_for("rawdata"), did, policies, topo, client_for=client_for)
    assert fourth.done
    assert len(fourth.created) == 2
    assert len(rules) == 8
    last = apply(client_for("rawdata"), did, policies, topo, client_for=client_for)
    assert last.created == []
    assert len(last.existing) == 8
    assert last.done
    assert {o.rule_id for o in last.outcomes} == {r["id"] for r in rules}


def test_apply_counts_a_duplicate_as_existing(policies: Policies, topo: Topology) -> None:
    rules: list[dict[str, Any]] = []
    client = StandInClient("production", rules, {"open": False})
    listed: list[dict[str, Any]] = []
    client.list_did_rules = lambda scope, name: list(listed)  # type: ignore[method-assign]
    rules.append({"id": "theirs", "account": "production", "rse_expression": "IHEP_DISK", "copies": 1,
                  "state": "OK", "comments": None})
    report = apply(client, "mc:mc.J25.IBD.rec", policies, topo)  # the first listing missed it
    assert [(o.status, o.rule_id) for o in report.outcomes] == [("existing", None)]
    listed.extend(rules)
    report = apply(client, "mc:mc.J25.IBD.rec", policies, topo)
    assert [(o.status, o.rule_id) for o in report.outcomes] == [("existing", "theirs")]


# --- `juno-dcs placement plan`

def test_cli_plan_json(topo: Topology) -> None:
    result = CliRunner().invoke(main, ["placement", "plan", "raw:block.20260102.physics", "--json"])
    assert result.exit_code == 0, result.output
    rules = json.loads(result.stdout)
    assert [r["policy_rule"] for r in rules] == ["ihep-disk", "ihep-tape", "cnaf-disk", "cnaf-tape", "jinr-disk",
                                                 "jinr-tape"]
    assert set(rules[0]) == set(PlannedRule.model_fields)
    assert rules[2]["lifetime"] == 90 * DAY
    assert rules[3]["after"] == "cnaf-disk"


def test_cli_plan_table_and_options() -> None:
    result = CliRunner().invoke(main, ["placement", "plan", "mc:mc.J25.IBD.rec", "--destination", "CNAF_DISK",
                                       "--destination", "site=JINR&type=DISK", "--lifetime", "30 days"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "mc:mc.J25.IBD.rec: 2 rule(s), owned by production"
    assert lines[1].split() == ["RULE", "RSE", "EXPRESSION", "COPIES", "LIFETIME", "SOURCE", "ACTIVITY", "AFTER"]
    assert lines[2].split() == ["mc.rec", "CNAF_DISK", "1", "30", "days", "-", "Production", "Output", "-"]
    assert "site=JINR&type=DISK" in lines[3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["raw:block.20260231.physics"], "not a calendar date"),
        (["raw:RUN.001234.physics.00007.20261125.rtraw"], "is a raw file"),
        (["mc:mc.J25.IBD.rec", "--lifetime", "soon"], "Invalid value for '--lifetime'"),
        (["mc:mc.J25.IBD.rec", "--destination", "CERN"], "unknown RSE or attribute 'CERN'"),
    ],
)
def test_cli_plan_refuses_with_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["placement", "plan", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_cli_apply_without_a_grid(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["placement", "apply", "raw:block.20260101.physics", "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert "no grid here" in result.stderr
