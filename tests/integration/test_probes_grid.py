"""The probes against the running grid: all OK when it is healthy, `tpc` CRITICAL with the failing pairs named
while one SE is stopped, `stuck-rules` naming why a rule cannot be done, and the scheduler's history."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from juno_probes import store
from juno_probes.nagios import threshold
from tests.conftest import BIN, Grid

SOURCE, TARGET, THIRD = "MSU_DISK", "JINR_DISK", "CNAF_DISK"


def probe(grid: Grid, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "juno-probe"), *args, "--config", str(grid.home / "etc" / "probes.yaml")],
                          env=grid.env("root"), capture_output=True, text=True, check=False, timeout=timeout)


def dsn(grid: Grid) -> str:
    return str(yaml.safe_load((grid.home / "etc" / "probes.yaml").read_text())["monitor_dsn"])


@pytest.fixture(scope="module")
def client(grid: Grid) -> Any:
    """A Rucio client as root, in this process."""
    from rucio.client import Client
    from rucio.common.config import clean_cached_config

    os.environ["RUCIO_CONFIG"] = str(grid.home / "etc" / "clients" / "root.cfg")
    clean_cached_config()
    return Client()


@pytest.mark.slow  # every probe once: make test sees them through the operator's story (e2e/test_operations.py)
def test_every_probe_is_ok_on_a_healthy_grid(grid: Grid, client: Any) -> None:
    for args in (["rucio"], ["conditions"], ["dispatcher"], ["ingest-lag"], ["transfer-queues", "--window", "120"],
                 ["programs"]):
        proc = probe(grid, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.startswith(f"{args[0].upper()} OK - "), proc.stdout
    proc = probe(grid, "conditions")
    assert "6 of 6 answer" in proc.stdout  # the service and one Squid per data centre
    proc = probe(grid, "tpc")  # how long its 60 copies take is this machine's speed, not a test's business
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 RSEs x 3 modes: 60 copies ok" in proc.stdout
    # stuck-rules agrees with Rucio: it reports exactly Rucio's STUCK rules (none on a fresh grid; another
    # module's leftovers on the suite's shared one), with the status their number gives at its default thresholds
    # (WARNING from 1, CRITICAL from 10). Why a rule is stuck: test_stuck_rules_names_... below, on purpose.
    stuck = {r["id"] for r in client.list_replication_rules({"state": "S"})}
    proc = probe(grid, "stuck-rules", "--json", "--older-than", "86400")
    reported = json.loads(proc.stdout)
    assert {r["rule_id"] for r in reported["rules"]} == stuck, proc.stdout
    expected = threshold(len(stuck), 1, 10)
    assert (proc.returncode, reported["status"]) == (expected.value, expected.name), proc.stdout


@pytest.fixture
def no_scheduler(grid: Grid) -> Iterator[None]:
    """The grid's own probe scheduler (program `probes`) stopped for the test: every probe run stored meanwhile
    is the test's own."""
    with grid.stopped("probes"):
        yield


@pytest.fixture
def stopped_se(grid: Grid) -> Iterator[str]:
    with grid.stopped(f"xrootd-{SOURCE}"):
        yield SOURCE


@pytest.mark.usefixtures("no_scheduler")
@pytest.mark.slow  # an SE stopped and started
def test_tpc_is_critical_with_the_failing_pairs_named_while_an_se_is_down(grid: Grid, stopped_se: str) -> None:
    since = datetime.now(UTC)
    proc = probe(grid, "tpc", "--rses", f"{stopped_se},{TARGET},{THIRD}", "--modes", "pull,push", "--timeout", "20",
                 "--monitor-db", dsn(grid))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.startswith("TPC CRITICAL - 3 RSEs x 2 modes: 8 of 12 copies failed: "
                                  f"{stopped_se}: all 8 copies from and to it failed"), proc.stdout
    assert f"{TARGET}->{THIRD}" not in proc.stdout
    assert "failed_fraction=0.667;0.01;0.1;0;1" in proc.stdout
    with store.connect(dsn(grid)) as conn:
        history = [a for a in store.tpc_history(conn, since) if {a.source, a.destination} <= {SOURCE, TARGET, THIRD}]
        latest = next(r for r in store.latest_runs(conn) if r.probe == "tpc")
        stored = store.runs(conn, "tpc", since)
    mine = [a for a in history if a.mode in ("pull", "push")]
    assert len(mine) == 12  # the scheduler is stopped: only this run's copies
    broken = [a for a in mine if stopped_se in (a.source, a.destination)]
    assert broken
    assert not any(a.ok for a in broken)
    assert all(a.error for a in broken)
    assert any(a.ok and a.throughput_mb_s for a in mine if stopped_se not in (a.source, a.destination))
    assert [r.status.name for r in stored] == ["CRITICAL"]
    assert stored[0].message.startswith("3 RSEs x 2 modes: 8 of 12 copies failed: "), stored[0].message
    assert latest.id == stored[0].id  # the scheduler is stopped: the newest tpc run is this one


def wait_state(client: Any, rule_id: str, state: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        rule: dict[str, Any] = client.get_replication_rule(rule_id)
        if str(rule["state"]).endswith(state) or time.monotonic() > deadline:
            return rule
        time.sleep(2)


def test_stuck_rules_names_a_source_blocked_for_reading_and_an_exhausted_quota(grid: Grid, client: Any,
                                                                             tmp_path: Path) -> None:
    from rucio.common.exception import InsufficientAccountLimit

    tag = uuid.uuid4().hex[:10]
    account, name = f"probe{tag}", f"stuck.{tag}.dat"
    scope = f"user.{account}"
    client.add_account(account, "USER", "probes@example.org")
    client.add_scope(account, scope)
    client.set_local_account_limit(account, SOURCE, 10**9)
    client.set_local_account_limit(account, TARGET, 10**9)
    (tmp_path / name).write_bytes(os.urandom(2000))
    grid.rucio("upload", "--rse", SOURCE, "--scope", scope, str(tmp_path / name))
    did = [{"scope": scope, "name": name}]
    rules: list[str] = []
    # what Rucio does with a rule over quota: refused at creation, so it never becomes STUCK by itself
    with pytest.raises(InsufficientAccountLimit):
        client.add_replication_rule(did, 1, THIRD, account=account)
    client.update_rse(SOURCE, {"availability_read": False})
    try:
        rules += client.add_replication_rule(did, 1, TARGET, account=account)
        rule = wait_state(client, rules[0], "STUCK", 90)
        assert str(rule["state"]).endswith("STUCK"), rule
        client.set_local_account_limit(account, TARGET, 0)  # and now the account has no quota left there
        # CRITICAL only from a million rules: this rule (and whatever else is STUCK on the shared grid) is WARNING
        proc = probe(grid, "stuck-rules", "--json", "--older-than", "86400", "--critical", "1000000")
    finally:
        client.update_rse(SOURCE, {"availability_read": True})
        for rule_id in rules:
            client.delete_replication_rule(rule_id, purge_replicas=True)
        for upload_rule in client.list_replication_rules({"scope": scope, "name": name}):
            client.delete_replication_rule(upload_rule["id"], purge_replicas=True)
        client.delete_account(account)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["status"] == "WARNING"
    found = next(r for r in answer["rules"] if r["rule_id"] == rules[0])
    assert found["state"] == "STUCK"
    assert found["did"] == f"{scope}:{name}"
    texts = {r["kind"]: r["text"] for r in found["reasons"]}
    assert texts["no_source"].startswith("no source replica for 1 file"), texts
    assert texts["rse_unavailable"] == (f"source RSE {SOURCE} is not available for reading "
                                        "(holds the only replica of 1 file)")
    assert texts["quota"].startswith(f"quota exceeded at {TARGET}: account {account} uses "), texts
    assert texts["quota"].endswith("of its limit of 0")


def schedule_config(grid: Grid, tmp_path: Path, name: str, interval_s: float, **probes: list[str]) -> Path:
    data = yaml.safe_load((grid.home / "etc" / "probes.yaml").read_text())
    data.update(schedule=name, tick_s=0.5,
                probes={p.replace("_", "-"): {"interval_s": interval_s, "args": a} for p, a in probes.items()})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def scheduled_runs(grid: Grid, name: str, probe_name: str, since: datetime) -> list[store.StoredRun]:
    with store.connect(dsn(grid)) as conn:
        return [r for r in store.runs(conn, probe_name, since)
                if r.details.get("scheduled", {}).get("schedule") == name]


def schedule(config: Path, grid: Grid) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN / "juno-probe"), "schedule", "--config", str(config), "--run-once"],
                            env=grid.env("root"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_the_scheduler_keeps_history_and_two_schedulers_do_not_double_run(grid: Grid, tmp_path: Path) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    name = f"test-{uuid.uuid4().hex[:8]}"
    config = schedule_config(grid, tmp_path, name, 1.0, dispatcher=[], ingest_lag=["--metrics-dir", "/nonexistent"])
    for _ in range(2):
        proc = schedule(config, grid)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        time.sleep(1.2)
    history = scheduled_runs(grid, name, "dispatcher", since)
    assert [r.status.name for r in history] == ["OK", "OK"]
    assert history[0].started_at < history[1].started_at
    broken = scheduled_runs(grid, name, "ingest-lag", since)
    assert len(broken) == 2
    assert all(r.status.name == "UNKNOWN" and "no such metrics directory" in r.message for r in broken)

    name = f"test-{uuid.uuid4().hex[:8]}"
    config = schedule_config(grid, tmp_path, name, 600.0, dispatcher=[], conditions=[], rucio=[])
    both = [schedule(config, grid), schedule(config, grid)]
    outs = [p.communicate(timeout=120)[0] for p in both]
    assert [p.returncode for p in both] == [0, 0], outs
    for probe_name in ("dispatcher", "conditions", "rucio"):
        runs = scheduled_runs(grid, name, probe_name, since)
        assert len(runs) == 1, (probe_name, runs)


@pytest.mark.slow  # the conveyor stopped for minutes
def test_a_conveyor_that_submits_nothing_is_named_within_minutes_and_the_rule_completes_once_it_is_back(
        grid: Grid, client: Any, tmp_path: Path) -> None:
    """rucio-conveyor-submitter stopped: a new rule's request waits QUEUED while the transfer service is idle.
    The stuck-rules probe names it (not_submitted) well before --older-than; with the submitter back it is OK."""
    tag = uuid.uuid4().hex[:10]
    name = f"unsubmitted.{tag}.dat"
    (tmp_path / name).write_bytes(os.urandom(3000))
    grid.rucio("upload", "--rse", "IHEP_DISK", "--scope", "user.alice", str(tmp_path / name), account="alice")
    did = [{"scope": "user.alice", "name": name}]
    rules: list[str] = []
    with grid.stopped("rucio-conveyor-submitter"):
        rules += client.add_replication_rule(did, 1, TARGET)
        time.sleep(8)  # the request's age, which --unsubmitted-after 5 asks for
        proc = probe(grid, "stuck-rules", "--json", "--older-than", "86400", "--unsubmitted-after", "5",
                     "--critical", "1000000")
    try:
        answer = json.loads(proc.stdout)
        found = next((r for r in answer["rules"] if r["rule_id"] == rules[0]), None)
        assert found is not None, answer
        assert found["state"] == "REPLICATING"
        texts = {r["kind"]: r["text"] for r in found["reasons"]}
        assert texts["not_submitted"].startswith("1 file wait in Rucio unsubmitted for up to 0 min while the "
                                                 "transfer service has nothing queued or active"), texts
        assert "is rucio-conveyor-submitter running?" in texts["not_submitted"]
        assert proc.returncode == 1, proc.stdout + proc.stderr
        rule = wait_state(client, rules[0], "OK", 300)
        assert str(rule["state"]).endswith("OK"), rule
    finally:
        for rule_id in rules:
            client.delete_replication_rule(rule_id, purge_replicas=True)
        for upload_rule in client.list_replication_rules({"scope": "user.alice", "name": name}):
            client.delete_replication_rule(upload_rule["id"], purge_replicas=True)
