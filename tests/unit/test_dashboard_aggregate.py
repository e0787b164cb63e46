"""The dashboard's pure logic: bucketing of finished transfers, series, running jobs per site, the share-policy
comparison of raw blocks, productions by step, the TPC matrix and the stuck rules of a probe run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from juno_dcs.dashboard import aggregate
from juno_dcs.dashboard.aggregate import DoneFile, Placement, Sample
from juno_dcs.ingest.status import BlockView, RuleView, SiteView
from juno_dcs.packaged import data_file
from juno_dcs.placement.loader import load_policies
from juno_dcs.placement.planner import plan
from juno_dcs.placement.rse_expr import evaluate
from juno_dcs.topology import Topology, load_topology
from juno_probes.store import TpcAttempt

SITES = {"davs://localhost:1": "IHEP", "davs://localhost:2": "IN2P3", "davs://localhost:3": "CNAF"}


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(data_file("topology.yaml"))


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_slot_is_the_start_of_its_window() -> None:
    assert aggregate.slot_of(1000.0, 60) == 960
    assert aggregate.slot_of(960.0, 60) == 960
    assert aggregate.slot_of(1019.9, 20) == 1000


def test_transfer_times_with_and_without_an_offset() -> None:
    assert aggregate.parse_time("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert aggregate.parse_time("2026-01-02T04:04:05+01:00") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert aggregate.parse_time(None) is None


def test_finished_bytes_are_summed_per_channel_and_bucket() -> None:
    files = [
        DoneFile("davs://localhost:1", "davs://localhost:2", "FINISHED", at(1210), 30_000_000),
        DoneFile("davs://localhost:1", "davs://localhost:2", "FINISHED", at(1250), 30_000_000),  # same bucket
        DoneFile("davs://localhost:1", "davs://localhost:2", "FAILED", at(1270), 99_000_000),  # no bytes
        DoneFile("davs://localhost:1", "davs://localhost:3", "FINISHED", at(1330), 6_000_000),
        DoneFile("davs://localhost:1", "root://elsewhere:9", "FINISHED", at(1330), 6_000_000),  # unknown SE
        DoneFile("davs://localhost:1", "davs://localhost:2", "FINISHED", at(1100), 60_000_000),  # before `since`
    ]
    got = aggregate.throughput_samples(files, SITES, bucket_s=60, since=1200)
    assert got == [
        Sample("throughput", "IHEP->CNAF", 1320, 0.1),
        Sample("throughput", "IHEP->IN2P3", 1200, 1.0),
        Sample("throughput", "IHEP->IN2P3", 1260, 0.0),  # only a failure: 0 MB/s, not no data
        Sample("throughput", "IHEP->root://elsewhere:9", 1320, 0.1),
    ]


def test_done_files_keep_only_final_files_with_a_finish_time() -> None:
    jobs: list[dict[str, Any]] = [{"files": [
        {"file_state": "FINISHED", "source_se": "a", "dest_se": "b", "finish_time": "2026-01-01T00:00:10",
         "transferred": 5},
        {"file_state": "ACTIVE", "source_se": "a", "dest_se": "b", "finish_time": None, "transferred": 0},
        {"file_state": "FAILED", "source_se": "a", "dest_se": "b", "finish_time": None, "transferred": 0},
    ]}, {"job_id": "no files"}]
    assert aggregate.done_files(jobs) == [DoneFile("a", "b", "FINISHED", datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC),
                                                   5)]


def test_series_fill_gaps_only_when_asked() -> None:
    rows = [Sample("s", "b", 120, 2.0), Sample("s", "a", 60, 1.0), Sample("s", "a", 180, 3.0)]
    filled = aggregate.series(rows, 60, until=200, fill=0.0)
    assert [s.key for s in filled] == ["a", "b"]
    assert [(p.x, p.y) for p in filled[0].points] == [(60_000, 1.0), (120_000, 0.0), (180_000, 3.0)]
    assert [(p.x, p.y) for p in filled[1].points] == [(120_000, 2.0), (180_000, 0.0)]
    sampled = aggregate.series(rows, 60, until=200)
    assert [(p.x, p.y) for p in sampled[0].points] == [(60_000, 1.0), (180_000, 3.0)]


def test_running_jobs_are_summed_over_a_sites_queues() -> None:
    queues = [{"queue": "IHEP", "site": "IHEP", "jobs": {"running": 2, "activated": 5}},
              {"queue": "IHEP-HIMEM", "site": "IHEP", "jobs": {"running": 1, "starting": 1, "holding": 1}},
              {"queue": "CNAF", "site": "CNAF", "jobs": {}}]
    per_site = aggregate.running_per_site(queues)
    assert per_site == {"CNAF": {}, "IHEP": {"running": 3, "activated": 5, "starting": 1, "holding": 1}}
    assert aggregate.job_samples(per_site, 40) == [Sample("running", "CNAF", 40, 0.0),
                                                   Sample("running", "IHEP", 40, 5.0)]


def test_ingest_lag_per_instance_and_total() -> None:
    got = aggregate.lag_samples([{"instance": "h:1", "lag_total": 3}, {"instance": "h:2", "lag_total": 4}], 20)
    assert got == [Sample("ingest_lag", "h:1", 20, 3.0), Sample("ingest_lag", "h:2", 20, 4.0),
                   Sample("ingest_lag", "total", 20, 7.0)]
    assert aggregate.lag_samples([], 20) == []


def _rule(expression: str, state: str) -> RuleView:
    return RuleView(id=f"r-{expression}", rse_expression=expression, state=state, locks_ok=0, locks_replicating=0,
                    locks_stuck=0)


def test_a_block_is_compared_with_the_share_policy(topology: Topology) -> None:
    block = BlockView(name="block.20260101.physics", state="closed", files=10, bytes=100, sites={
        "IHEP": SiteView(replicas=10, rses={"IHEP_DISK": 10}, rules=["OK"], rule_details=[_rule("IHEP_DISK", "OK")]),
        "CNAF": SiteView(replicas=4, rses={"CNAF_DISK": 4}, rules=["REPLICATING"],
                         rule_details=[_rule("CNAF_DISK", "REPLICATING")]),
        "JINR": SiteView(replicas=0, rules=["STUCK"], rule_details=[_rule("JINR_DISK", "STUCK")]),
        "MSU": SiteView(replicas=2, rses={"MSU_DISK": 2}),
    })
    expected = {"IHEP_DISK": Placement("ihep-disk"), "CNAF_DISK": Placement("cnaf-disk"),
                "CNAF_TAPE": Placement("cnaf-tape", after="cnaf-disk"), "JINR_DISK": Placement("jinr-disk"),
                "IHEP_TAPE": Placement("ihep-tape")}
    row = aggregate.compare_block(block, expected, topology)
    states = {r.rse: (r.state, r.files, r.expected) for r in row.rses}
    assert states == {
        "IHEP_DISK": ("complete", 10, True), "IHEP_TAPE": ("missing", 0, True),
        "CNAF_DISK": ("replicating", 4, True), "CNAF_TAPE": ("waiting", 0, True),
        "JINR_DISK": ("stuck", 0, True), "MSU_DISK": ("extra", 2, False),
    }
    assert next(r for r in row.rses if r.rse == "CNAF_DISK").rule_states == ["REPLICATING"]
    shares = {s.site: (s.expected_files, s.held_files) for s in aggregate.site_shares([row])}
    assert shares == {"IHEP": (20, 10), "CNAF": (20, 4), "JINR": (10, 0)}  # MSU: not in the policy


def test_the_shipped_policy_puts_one_day_in_three_at_in2p3(topology: Topology) -> None:
    policies = load_policies(data_file("placement"))
    selected = {day: aggregate.expected_rses(
        (Placement(p.policy_rule, p.after), evaluate(p.rse_expression, topology))
        for p in plan(f"raw:block.{day}.physics", policies, topology)) for day in ("20260101", "20260102", "20260103")}
    with_in2p3 = [day for day, rses in selected.items() if "IN2P3_DISK" in rses]
    assert len(with_in2p3) == 1
    assert selected[with_in2p3[0]]["IN2P3_TAPE"] == Placement("in2p3-tape", after="in2p3-disk")
    assert all({"IHEP_DISK", "IHEP_TAPE", "CNAF_DISK", "JINR_DISK"} <= set(rses) for rses in selected.values())


def test_productions_are_grouped_by_name_with_steps_in_workflow_order() -> None:
    tasks = [
        {"task_id": 3, "name": "e-p1.rec", "kind": "production", "owner": "production",
         "jobs_by_state": {"activated": 2, "failed": 0}},
        {"task_id": 1, "name": "e-p1.detsim", "kind": "production", "owner": "production",
         "jobs_by_state": {"finished": 2}},
        {"task_id": 2, "name": "e-p1.elecsim", "kind": "production", "owner": "production",
         "jobs_by_state": {"running": 1, "finished": 1}},
        {"task_id": 4, "name": "analysis", "kind": "user", "owner": "alice", "jobs_by_state": {"running": 9}},
    ]
    (prod,) = aggregate.productions(tasks)
    assert prod.name == "e-p1"
    assert [(s.step, s.jobs_total, s.jobs_by_state) for s in prod.steps] == [
        ("detsim", 2, {"finished": 2}), ("elecsim", 2, {"running": 1, "finished": 1}), ("rec", 2, {"activated": 2})]


def test_tpc_matrix_and_success_per_mode() -> None:
    attempts = [TpcAttempt("A_DISK", "B_DISK", "pull", True, 1.0, 5.0, None, at(600)),
                TpcAttempt("B_DISK", "A_DISK", "pull", False, 2.0, None, "Connection refused", at(610)),
                TpcAttempt("A_DISK", "B_DISK", "push", True, 1.0, 4.0, None, at(620))]
    matrix, failing = aggregate.tpc_matrix(attempts)
    assert matrix["pull"]["A_DISK"]["B_DISK"].ok
    assert matrix["pull"]["B_DISK"]["A_DISK"].error == "Connection refused"
    assert sorted(matrix) == ["pull", "push"]
    assert failing == ["pull B_DISK->A_DISK: Connection refused"]
    assert aggregate.tpc_success(attempts, 60) == [Sample("tpc", "pull", 600, 50.0), Sample("tpc", "push", 600, 100.0)]


def test_stuck_rules_from_the_probes_details() -> None:
    details = {"older_than_s": 1800, "rules": [
        {"rule_id": "abc", "did": "raw:block.20260101.physics", "rse_expression": "CNAF_DISK", "state": "STUCK",
         "account": "rawdata", "reasons": [{"kind": "quota", "text": "quota exceeded at CNAF_DISK"},
                                           {"kind": "transfer", "text": "3 copies failed"}]},
        {"id": "def", "scope": "mc", "name": "x", "rse_expression": "IHEP_DISK", "state": "REPLICATING",
         "reason": "waiting for tape"},
        "not a rule",
    ]}
    first, second = aggregate.stuck_rules(details)
    assert first.reason == "quota exceeded at CNAF_DISK; 3 copies failed"
    assert first.extra == {"account": "rawdata"}
    assert (second.rule_id, second.did, second.reason) == ("def", "mc:x", "waiting for tape")
    assert aggregate.stuck_rules({}) == []
