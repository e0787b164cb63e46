"""The grid outlives the outages of the services it stands on: PostgreSQL refusing every connection of the grid,
Kafka and ActiveMQ stopped, each for 60 s in the middle of a data-taking day. Afterwards every program runs again
by itself (the supervisor restarts what exits, the watchdog what the supervisor gave up on), `juno-dcs status` is
healthy, and the day reaches every site of the share with every file there once, with the checksum SPADE
announced. Slow: each story waits out its outage and the programs' backoff (`make test-all`)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import JUNO_DCS, Grid, run
from tests.e2e.shell import Shell, replicas, wait_for
from tests.e2e.stories import DataTakingDay

pytestmark = [pytest.mark.grid, pytest.mark.e2e, pytest.mark.slow]

OUTAGE_S = 60
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def postgresql_refuses(role: str) -> Iterator[None]:
    """Every connection of `role` cut and every new one refused until the block ends."""
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
        try:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            yield
            still = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)).fetchone()
            assert still == (0,), f"{role} held {still} connections during the outage"
        finally:
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))


@contextlib.contextmanager
def program_stopped(grid: Grid, name: str) -> Iterator[None]:
    ctl = [str(Path(JUNO_DCS).parent / "supervisorctl"), "-c", str(grid.home / "etc" / "supervisord.conf")]
    run([*ctl, "stop", name])
    try:
        yield
    finally:
        run([*ctl, "start", name])


def healthy(grid: Grid) -> dict[str, Any]:
    proc = grid.juno_dcs("status", "--json", check=False)
    return {"rc": proc.returncode, **(json.loads(proc.stdout) if proc.stdout.strip() else {})}


def replicating(day: DataTakingDay) -> bool:
    """Some rule of the day has files still to copy."""
    blocks = day.raw_status()
    return any(d["state"] == "REPLICATING" for b in blocks for site in b["sites"].values()
               for d in site["rule_details"])


def every_file_once(day: DataTakingDay, tmp_path: Path) -> None:
    reader = Shell(day.spade.grid, "alice", tmp_path / "reader")
    for block, expected in day.blocks.items():
        found = replicas(reader, f"raw:{block}")
        date = block.split(".")[1]
        names = sorted(n for n in day.announced if n.split(".")[4] == date)
        assert sorted(found) == names, block
        for name in names:
            assert found[name]["adler32"] == day.announced[name]["adler32"], name
            assert sorted(found[name]["rses"]) == sorted(expected), (name, found[name]["rses"])


def outage_story(grid: Grid, tmp_path: Path, outage: contextlib.AbstractContextManager[None]) -> dict[str, Any]:
    day = DataTakingDay(Shell(grid, "rawdata", tmp_path / "spade"), files=40)
    day.start()
    wait_for("a rule of the day replicating", lambda: replicating(day), bool, timeout=600, every=2)
    started = time.monotonic()
    with outage:
        time.sleep(OUTAGE_S)
    assert time.monotonic() - started >= OUTAGE_S
    # every program runs again by itself: nobody restarts anything here
    status = wait_for("every program of the grid running and every service answering", lambda: healthy(grid),
                      lambda s: s["rc"] == 0, timeout=600, every=5)
    assert status["down"] == {}
    # and a day that SPADE delivers after the outage flows as well (Kafka -> ingest -> rules -> copies)
    after = DataTakingDay(Shell(grid, "rawdata", tmp_path / "spade-after"), files=10)
    after.start()
    for story in (day, after):
        story.wait(timeout=1500)
        every_file_once(story, tmp_path)
    return status


@pytest.mark.timeout(2400)
def test_a_day_replicates_through_60_s_of_postgresql_refusing_the_grid(grid: Grid, tmp_path: Path) -> None:
    outage_story(grid, tmp_path, postgresql_refuses(str(grid.state()["db_user"])))


@pytest.mark.timeout(2400)
def test_a_day_is_ingested_through_60_s_of_kafka_stopped(grid: Grid, tmp_path: Path) -> None:
    outage_story(grid, tmp_path, program_stopped(grid, "kafka"))


@pytest.mark.timeout(2400)
def test_a_day_is_transferred_through_60_s_of_activemq_stopped(grid: Grid, tmp_path: Path) -> None:
    outage_story(grid, tmp_path, program_stopped(grid, "activemq"))
