"""The statistics keeper on a real PostgreSQL: it brings the planner's estimates back in line with a table that
grew, vacuums dead rows, leaves a table alone while another keeper holds it, and its CLI reports bad input."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from juno_dcs.grid.dbstats import LOCK_CLASS, Action, Mode, Thresholds, keep, run_pass
from juno_dcs.migrations.runner import upgrade_postgres
from tests.conftest import JUNO_DCS, run
from tests.integration.wms_helpers import throwaway_database

# Rucio's lookup of a batch of files: one OR of (scope, name) pairs
LOOKUP = sql.SQL("EXPLAIN SELECT name FROM t.files WHERE {}").format(sql.SQL(" OR ").join(
    sql.SQL("(scope = 'raw' AND name = {})").format(sql.Literal(f"f{i}")) for i in range(200)))


@pytest.fixture
def database() -> Iterator[str]:
    with throwaway_database("dbstats_test", migrated=False) as url:
        upgrade_postgres(url, ("daemons",))  # the keepers' heartbeats; no other table of the project's
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA t")
            conn.execute("CREATE TABLE t.files (scope text, name text, bytes bigint, PRIMARY KEY (scope, name))")
            conn.execute("INSERT INTO t.files SELECT 'user', 'u' || i, i FROM generate_series(1, 200) i")
            conn.execute("ANALYZE t.files")  # statistics of the small table: no 'raw' rows at all
            conn.execute("INSERT INTO t.files SELECT 'raw', 'f' || i, i FROM generate_series(1, 50000) i")
        yield url


def ours(done: list[Any]) -> list[Any]:
    """What a pass did to the test's own schema (the keepers' heartbeat tables are worked on too)."""
    return [d for d in done if d.schema == "t"]


def estimated_raw_rows(conn: psycopg.Connection[tuple[object, ...]]) -> float:
    plan = conn.execute("EXPLAIN (FORMAT JSON) SELECT * FROM t.files WHERE scope = 'raw'").fetchone()
    return float(plan[0][0]["Plan"]["Plan Rows"])  # type: ignore[index]


def wait_for_counters(conn: psycopg.Connection[tuple[object, ...]], column: str, at_least: int) -> None:
    """Backends report their row counts to the statistics system within a second or so of going idle."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        row = conn.execute(sql.SQL("SELECT {} FROM pg_stat_user_tables WHERE relname = 'files'").format(
            sql.Identifier(column))).fetchone()
        if row and int(row[0]) >= at_least:
            return
        time.sleep(0.2)
    raise AssertionError(f"pg_stat_user_tables.{column} of t.files never reached {at_least}")


def test_a_pass_analyzes_the_grown_table_and_the_planner_learns(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        wait_for_counters(conn, "n_mod_since_analyze", 50000)
        assert estimated_raw_rows(conn) < 1000  # what made Rucio's lookups slow: 'raw' looks rare
        done = ours(run_pass(conn, Thresholds()))
        assert [(d.table, d.action) for d in done] == [("files", Action.ANALYZE)]
        assert "rows changed since the last ANALYZE" in done[0].reason
        assert estimated_raw_rows(conn) > 40000
        plan = "\n".join(str(r[0]) for r in conn.execute(LOOKUP).fetchall())
        assert "BitmapOr" in plan or "Index" in plan.split("\n")[0], plan  # one index probe per pair
        assert ours(run_pass(conn, Thresholds())) == []  # nothing changed since: nothing to do


def test_dead_rows_are_vacuumed(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("ANALYZE t.files")
        conn.execute("UPDATE t.files SET bytes = bytes + 1 WHERE scope = 'raw'")  # 50,000 dead rows
        wait_for_counters(conn, "n_dead_tup", 50000)
        done = ours(run_pass(conn, Thresholds()))
        assert [(d.table, d.action) for d in done] == [("files", Action.VACUUM)]
        wait_for_counters(conn, "vacuum_count", 1)
        dead = conn.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'files'").fetchone()
        assert dead is not None
        assert int(dead[0]) < 1000


def test_a_table_another_keeper_holds_is_skipped(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as other, psycopg.connect(database, autocommit=True) as conn:
        wait_for_counters(conn, "n_mod_since_analyze", 50000)
        oid = conn.execute("SELECT 't.files'::regclass::oid").fetchone()[0]  # type: ignore[index]
        assert other.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, oid)).fetchone()[0]  # type: ignore[index]
        assert ours(run_pass(conn, Thresholds())) == []
        other.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, oid))
        assert [d.table for d in ours(run_pass(conn, Thresholds()))] == ["files"]


def test_two_keepers_at_once_analyze_each_table_once_per_change(database: str) -> None:
    stop = threading.Event()
    results: list[list[Any]] = []
    threads = [threading.Thread(target=lambda: results.append(list(keep(database, Thresholds(), Mode.ALWAYS, 0.5,
                                                                           stop))), daemon=True)
               for _ in range(2)]
    with psycopg.connect(database, autocommit=True) as conn:
        wait_for_counters(conn, "n_mod_since_analyze", 50000)
        try:
            for t in threads:
                t.start()
            wait_for_counters(conn, "analyze_count", 2)  # the fixture's own ANALYZE, then the keepers'
            time.sleep(2)
        finally:  # a failed check must not leave the keepers running (their database is dropped next)
            stop.set()
            for t in threads:
                t.join(timeout=30)
        count = conn.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'files'").fetchone()
    assert count is not None
    assert int(count[0]) == 2
    # the keepers' own heartbeat table (daemons.heartbeat) may be analyzed too: count the test's table
    assert sum(1 for r in results for d in r if d.table == "files") == 1


def test_the_cli_reports_bad_input(tmp_path: Path) -> None:
    missing = run([JUNO_DCS, "db-stats", "--home", str(tmp_path / "nowhere"), "--run-once"], check=False)
    assert missing.returncode == 2
    assert "no grid in" in missing.stderr
    for args, words in ((["--interval", "0"], "--interval"), (["--mode", "sometimes"], "--mode")):
        proc = run([JUNO_DCS, "db-stats", "--home", str(tmp_path), "--run-once", *args], check=False)
        assert proc.returncode == 2
        assert words in proc.stderr, proc.stderr
