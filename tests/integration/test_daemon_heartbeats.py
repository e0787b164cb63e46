"""The daemon runner's heartbeats against a real PostgreSQL (a throwaway database): shares of live instances,
dropping an instance that stopped beating, two real `juno-wms agent` processes sharing the jobs, and SIGTERM to a
real daemon process."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from juno_dcs.heartbeat import Heartbeats, Instance, Share, ensure_schema, per_beat_connections
from juno_dcs.migrations.check import SchemaVersionError
from juno_dcs.wms.client import WmsClient
from juno_dcs.wms.models import JobSpec
from tests.integration.wms_helpers import BIN, Server, throwaway_database, write_config


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with throwaway_database("daemons_test") as url:
        yield url


def instance(thread: str, executable: str = "test-daemon") -> Instance:
    return Instance(executable, "host-a", 4242, thread)


def test_two_instances_share_the_work_exactly_once(database: str) -> None:
    connect = per_beat_connections(database)
    one = Heartbeats("split", connect, timeout=30, every=0, instance=instance("one", "split"))
    two = Heartbeats("split", connect, timeout=30, every=0, instance=instance("two", "split"))
    one.beat()
    two.beat()
    shares = [one.beat(), two.beat()]
    assert shares == [Share(0, 2), Share(1, 2)]
    done: list[int] = []
    for share in shares:
        done += [item for item in range(1000) if share.takes(item)]
    assert sorted(done) == list(range(1000))  # every item, exactly once
    assert 400 < sum(shares[0].takes(i) for i in range(1000)) < 600


def test_an_instance_that_stops_beating_is_dropped(database: str) -> None:
    connect = per_beat_connections(database)
    survivor = Heartbeats("drop", connect, timeout=1.5, every=0, instance=instance("a", "drop"))
    silent = Heartbeats("drop", connect, timeout=1.5, every=0, instance=instance("b", "drop"))
    survivor.beat()
    assert silent.beat() == Share(1, 2)
    assert survivor.beat() == Share(0, 2)
    time.sleep(2.0)  # b beats no more (killed)
    assert survivor.beat() == Share(0, 1)  # takes everything
    assert all(survivor.share.takes(i) for i in range(100))
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT thread FROM daemons.heartbeat WHERE executable = 'drop'").fetchall()
    assert rows == [("a",)]


def test_a_stopped_instance_leaves_at_once_and_other_daemons_do_not_count(database: str) -> None:
    connect = per_beat_connections(database)
    a = Heartbeats("leave", connect, timeout=60, every=0, instance=instance("a", "leave"))
    b = Heartbeats("leave", connect, timeout=60, every=0, instance=instance("b", "leave"))
    other = Heartbeats("another", connect, timeout=60, every=0, instance=instance("a", "another"))
    a.beat()
    b.beat()
    assert other.beat() == Share(0, 1)
    b.die()
    assert a.beat() == Share(0, 1)


def test_the_heartbeat_table_comes_from_the_migrations(database: str) -> None:
    with psycopg.connect(database) as conn:
        ensure_schema(conn)  # the fixture's database is at head, as `juno-dcs up` leaves the grid's
    with (throwaway_database("daemons_bare", migrated=False) as bare, psycopg.connect(bare) as conn,
          pytest.raises(SchemaVersionError, match="schema daemons has no version")):
        ensure_schema(conn)


@pytest.fixture(scope="module")
def wms(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, WmsClient]]:
    config = write_config(tmp_path_factory.mktemp("wms"), database, agent_bulk=50)
    with Server(config, workers=1) as server:
        yield config, WmsClient(server.url, timeout=60)


def agent_process(config: Path, log: Path, sleep: str = "0.5") -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(BIN / "juno-wms"), "agent", "--config", str(config), "--sleep-time", sleep,
                                 "--log-json"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def live_agents(database: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM daemons.heartbeat WHERE executable = 'juno-wms agent'").fetchone()
    return int(row[0]) if row else 0


def wait_for(what: str, check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def brokered(log: Path) -> int:
    total = 0
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"cycle: ' in line:
            message = json.loads(line)["message"]
            total += json.loads(message.removeprefix("cycle: ").replace("'", '"'))["brokered"]
    return total


@pytest.mark.slow  # two agent processes until their heartbeats settle
def test_two_agent_processes_share_the_jobs(wms: tuple[Path, WmsClient], database: str, tmp_path: Path) -> None:
    config, client = wms
    logs = [tmp_path / "agent-0.log", tmp_path / "agent-1.log"]
    agents = [agent_process(config, log) for log in logs]
    try:
        wait_for("two agents beat", lambda: live_agents(database) == 2, 30)
        # each learns its share at a beat (every 10 s: a sixth of the 60 s timeout)
        wait_for("both agents know there are two", lambda: all(
            "instance 0 of 2" in log.read_text() or "instance 1 of 2" in log.read_text() for log in logs), 30)
        specs = [JobSpec.model_validate({"key": f"j{i}", "transformation": "detsim", "memory_mb": 200})
                 for i in range(400)]
        task_id, _ = client.submit_task("shared", "production", "production", specs)
        wait_for("every job brokered", lambda: client.task(task_id)["jobs_by_state"] == {"activated": 400})
    finally:
        for proc in agents:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in agents]
    assert codes == [0, 0]
    with psycopg.connect(database) as conn:
        assigned = conn.execute("SELECT job_id, count(*) FROM wms.job_history WHERE state = 'assigned' "
                                "GROUP BY job_id").fetchall()
    assert len(assigned) == 400
    assert {n for _, n in assigned} == {1}
    counts = [brokered(log) for log in logs]
    assert sum(counts) == 400, counts
    assert all(c > 0 for c in counts), counts  # both did a share
    assert live_agents(database) == 0  # each removed its heartbeat on the way out


def test_sigterm_stops_a_real_daemon_within_a_pass(wms: tuple[Path, WmsClient], database: str,
                                                   tmp_path: Path) -> None:
    config, _ = wms
    proc = agent_process(config, tmp_path / "agent.log", sleep="300")
    try:
        wait_for("the agent beats", lambda: live_agents(database) == 1, 30)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5  # the 300 s sleep was cut short
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "stopping after the pass in progress" in (tmp_path / "agent.log").read_text()
    assert live_agents(database) == 0
