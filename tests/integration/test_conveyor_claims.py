"""Rucio's conveyor skips a request it has marked for a fixed 600 s. A mark left by a pass that failed stalls the
rule for that long; grid/claims.py gives such a request back once its mark is 120 s old (the grid's db-stats
program does it every pass), and the submitter takes it on its next pass."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from juno_dcs.grid import database
from juno_dcs.grid.claims import release
from juno_dcs.grid.home import GridHome
from tests.conftest import Grid

pytestmark = [pytest.mark.grid, pytest.mark.slow]  # about 70 s: make test-all
SOURCE, TARGET = "IHEP_DISK", "CNAF_DISK"


@pytest.fixture(scope="module")
def client(grid: Grid) -> Any:
    from rucio.client import Client
    from rucio.common.config import clean_cached_config

    os.environ["RUCIO_CONFIG"] = str(grid.home / "etc" / "clients" / "root.cfg")
    clean_cached_config()
    return Client()


@pytest.fixture
def conn(grid: Grid) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database.grid_url(GridHome(grid.home).load_state())) as connection:
        yield connection


def request_of(conn: psycopg.Connection, rule_id: str) -> tuple[str, str | None]:
    conn.commit()  # a fresh snapshot
    row = conn.execute("SELECT state, last_processed_by FROM rucio.requests WHERE rule_id = %s",
                       (uuid.UUID(rule_id).hex.upper(),)).fetchone()
    assert row is not None, f"no request for rule {rule_id}"
    return str(row[0]), row[1]


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(1)


def new_file(grid: Grid, tmp_path: Path, tag: str) -> list[dict[str, str]]:
    name = f"claims.{tag}.{uuid.uuid4().hex[:8]}.dat"
    (tmp_path / name).write_bytes(os.urandom(2000))
    grid.rucio("upload", "--rse", SOURCE, "--scope", "user.alice", str(tmp_path / name), account="alice")
    return [{"scope": "user.alice", "name": name}]


def test_a_request_left_marked_by_a_failed_pass_is_given_back_and_submitted(grid: Grid, client: Any,
                                                                            conn: psycopg.Connection,
                                                                            tmp_path: Path) -> None:
    rules: list[str] = []
    try:
        # the submitter's own mark, as it leaves it on every request it takes
        rules += client.add_replication_rule(new_file(grid, tmp_path, "first"), 1, TARGET)
        wait_for(lambda: request_of(conn, rules[0])[1] is not None, 120, "the submitter marks the first request")
        mark = request_of(conn, rules[0])[1]
        with grid.stopped("rucio-conveyor-submitter"):
            rules += client.add_replication_rule(new_file(grid, tmp_path, "second"), 1, TARGET)
            assert request_of(conn, rules[1]) == ("Q", None)
            # what a pass that took the request and then failed leaves behind, 100 s ago
            conn.execute("UPDATE rucio.requests SET last_processed_by = %s, "
                         "last_processed_at = (now() AT TIME ZONE 'UTC') - interval '100 seconds' "
                         "WHERE rule_id = %s", (mark, uuid.UUID(rules[1]).hex.upper()))
            conn.commit()
            assert release(conn, after_s=300) == {}  # not old enough to be given back
            marked = time.monotonic()
        time.sleep(10)  # the submitter is back and has passed several times: it skips the marked request
        assert request_of(conn, rules[1]) == ("Q", mark)
        # the grid's db-stats gives it back once the mark is 120 s old (a pass every 10 s); Rucio alone would
        # wait until 600 s
        wait_for(lambda: request_of(conn, rules[1])[0] != "Q", 20 + 10 + 30 - (time.monotonic() - marked),
                 "the grid gives the request back and the submitter takes it")
        assert release(conn, after_s=120) == {}  # nothing left to give back
        deadline = time.monotonic() + 240
        while not str(client.get_replication_rule(rules[1])["state"]).endswith("OK"):
            assert time.monotonic() < deadline, client.get_replication_rule(rules[1])
            time.sleep(2)
    finally:
        for rule_id in rules:
            client.delete_replication_rule(rule_id, purge_replicas=True)


def test_release_refuses_a_window_that_is_not_positive(conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="after_s must be positive"):
        release(conn, after_s=0)
