"""The schemas' migrations against the real PostgreSQL and MariaDB: a database of the last release (release_0_1/:
its DDL and rows in every table, jobs with the pilot's old error codes, probe runs in schema `monitor`) is
upgraded and every row is still there, the codes rewritten, the schema renamed; a second upgrade changes
nothing; two upgrades at once serialise; a program refuses a schema that is behind."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from juno_dcs.conditions import db as conditions_db
from juno_dcs.migrations import runner
from juno_dcs.migrations.check import SchemaVersionError, pg_version
from juno_dcs.wms import db as wms_db
from juno_probes import store
from tests.integration.wms_helpers import throwaway_database

pytestmark = pytest.mark.services

RELEASE = Path(__file__).parent / "release_0_1"
MARIADB = "mysql+pymysql://root@127.0.0.1:3306/"
TABLES = ["fts.jobs", "fts.files", "fts.link_limits", "fts.optimizer_decisions", "wms.tasks", "wms.jobs",
          "wms.job_history", "wms.pilots", "prodsys.productions", "prodsys.steps", "prodsys.jobs", "prodsys.history",
          "dashboard.sample", "{probes}.probe_run", "{probes}.tpc_attempt", "{probes}.schedule_slot"]
# the columns that the upgrade may change; every other column of every row must stay as it was
# columns an upgrade rewrites (error_code, reason: wms v2) or adds (avoid_queues: wms v3), left out of the comparison
CHANGED = {"wms.jobs": ("error_code", "avoid_queues"), "wms.job_history": ("reason",)}


@pytest.fixture
def release_database() -> Iterator[str]:
    """A database exactly as release 0.1 left it: its tables, made by its DDL, with rows in every one."""
    with throwaway_database("migrations_test", migrated=False) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute((RELEASE / "postgresql.sql").read_text())
            conn.execute((RELEASE / "rows.sql").read_text())
        yield url


def _rows(url: str, probes_schema: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, the columns an upgrade may change left out, in a stable order."""
    found = {}
    with psycopg.connect(url) as conn:
        for table in TABLES:
            name = table.format(probes=probes_schema)
            left_out = CHANGED.get(name, ())
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema || '.' || table_name = %s"
                " ORDER BY ordinal_position", (name,)) if r[0] not in left_out]
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM {name}").fetchall()  # noqa: S608 (our tables)
            found[table] = sorted(rows, key=repr)
    return found


def _digest(url: str) -> str:
    return hashlib.sha256(repr(_rows(url, "probes")).encode()).hexdigest()


def test_a_release_database_upgrades_and_keeps_every_row(release_database: str) -> None:
    before = _rows(release_database, "monitor")
    assert all(before.values()), "every table of the fixture has rows"
    steps = runner.upgrade_postgres(release_database)
    assert {s.schema: (s.before, s.after) for s in steps} == {
        "daemons": (None, "1"), "fts": (None, "2"), "wms": (None, "3"), "prodsys": (None, "1"),
        "dashboard": (None, "2"), "probes": (None, "2")}
    assert _rows(release_database, "probes") == before  # every row, every unchanged column
    with psycopg.connect(release_database) as conn:
        assert conn.execute("SELECT to_regnamespace('monitor')").fetchone() == (None,)
        codes = dict(conn.execute("SELECT key, error_code FROM wms.jobs").fetchall())
        reasons = [r[0] for r in conn.execute("SELECT reason FROM wms.job_history ORDER BY id")]
        # the sequences moved with the schema: the next run continues the ids
        new_id = conn.execute("INSERT INTO probes.probe_run (probe, status, message, started_at, duration_s)"
                              " VALUES ('x', 0, 'ok', now(), 0) RETURNING id").fetchone()
        conn.rollback()
    assert codes == {"j-memory": 1235, "j-stageout": 1137, "j-lost": 1201, "j-killed": 1144, "j-payload": 1305,
                     "j-walltime": 1213, "j-stagein": 1099, "j-done": None}
    assert reasons == ["pilot p1: error 1235 (memory) RSS over 250 MB",
                       "error 1235 (memory): rule 2 says retry_more_memory: memory 250 -> 500 MB, attempt 2",
                       "pilot p1: error 1137 (stageout) upload refused", "error 1201 (lost): lease ended",
                       "killed by command", "pilot p2: 1 outputs"]
    assert new_id == (3,)
    # the programs' own readers work on the upgraded schemas
    with store.connect(release_database) as conn:
        store.check_schema(conn)
        assert {r.probe for r in store.latest_runs(conn)} == {"rucio", "tpc"}
        assert len(store.tpc_matrix(conn)) == 2
    pool = wms_db.open_pool(release_database, size=1)
    try:
        with pool.connection() as conn:
            assert wms_db.get_job(conn, 2)["error_code"] == 1137  # type: ignore[index]
    finally:
        pool.close()


def test_a_second_upgrade_changes_nothing(release_database: str) -> None:
    runner.upgrade_postgres(release_database)
    first = _digest(release_database)
    with psycopg.connect(release_database) as conn:
        codes = conn.execute("SELECT job_id, error_code FROM wms.jobs ORDER BY job_id").fetchall()
    assert not any(s.changed for s in runner.upgrade_postgres(release_database))
    assert _digest(release_database) == first
    with psycopg.connect(release_database) as conn:
        assert conn.execute("SELECT job_id, error_code FROM wms.jobs ORDER BY job_id").fetchall() == codes


def test_two_upgrades_at_once_run_one_after_the_other(release_database: str) -> None:
    results: list[list[runner.Step]] = []
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            results.append(runner.upgrade_postgres(release_database))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    changed = sorted(sum(s.changed for s in steps) for steps in results)
    assert changed == [0, 6]  # the second waited for the first's lock and found everything at head
    with psycopg.connect(release_database) as conn:
        assert conn.execute("SELECT error_code FROM wms.jobs WHERE key = 'j-memory'").fetchone() == (1235,)
        for name in ("fts", "wms", "prodsys", "dashboard", "probes"):
            assert conn.execute(f"SELECT count(*) FROM schema_versions.{name}").fetchone() == (1,)  # noqa: S608


def test_the_migrations_leave_no_connection_behind(release_database: str) -> None:
    database = release_database.rsplit("/", 1)[1]
    runner.upgrade_postgres(release_database)
    runner.versions_postgres(release_database)
    with psycopg.connect(release_database, autocommit=True) as conn:
        others = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                              (database,)).fetchone()
    assert others == (0,)


def test_a_program_refuses_a_schema_that_is_behind(release_database: str) -> None:
    with pytest.raises(SchemaVersionError, match=r"schema wms has no version .* run `juno-dcs up`"):
        wms_db.open_pool(release_database, size=1)
    runner.upgrade_postgres(release_database)
    with psycopg.connect(release_database, autocommit=True) as conn:
        conn.execute("UPDATE schema_versions.wms SET version_num = '1'")
        assert pg_version(conn, "wms") == "1"
    with pytest.raises(SchemaVersionError, match=r"^schema wms is at version 1, the code needs 3: run `juno-dcs up`"):
        wms_db.open_pool(release_database, size=1)


@pytest.fixture
def release_conditions() -> Iterator[sa.Engine]:
    """A conditions database on MariaDB as release 0.1 made it, with a tag, a folder, a payload and an IOV."""
    name = f"migrations_cond_{secrets.token_hex(4)}"
    admin = sa.create_engine(MARIADB, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    engine = sa.create_engine(MARIADB + name, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            ddl = "\n".join(line for line in (RELEASE / "conditions.sql").read_text().splitlines()
                            if not line.startswith("--"))
            for statement in filter(str.strip, ddl.split(";\n")):
                conn.exec_driver_sql(statement)
            conn.exec_driver_sql("INSERT INTO cond_tags VALUES (1, 'JUNO-2026', 'test', 'locked', now(6), now(6),"
                                 " now(6))")
            conn.exec_driver_sql("INSERT INTO cond_folders VALUES (1, 'pmt_gains', 'pmt_gains', '')")
            digest = {"h": "a" * 64}
            conn.execute(sa.text("INSERT INTO cond_payloads VALUES (:h, 2, x'7b7d', now(6))"), digest)
            conn.execute(sa.text("INSERT INTO cond_iovs VALUES (1, 1, 1, 1, 100, :h, now(6))"), digest)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def _conditions_rows(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        return [conn.execute(sa.text(f"SELECT * FROM {t}")).fetchall()  # noqa: S608 (our tables)
                for t in ("cond_tags", "cond_folders", "cond_payloads", "cond_iovs")]


def test_a_release_conditions_database_is_recognised_at_version_1(release_conditions: sa.Engine) -> None:
    before = _conditions_rows(release_conditions)
    step = runner.upgrade_conditions(release_conditions)
    assert (step.before, step.after) == (None, "1")
    assert _conditions_rows(release_conditions) == before
    assert not runner.upgrade_conditions(release_conditions).changed
    assert runner.conditions_version(release_conditions) == ("1", "1")
    assert conditions_db.check_schema(release_conditions.url.render_as_string(hide_password=False))
    with release_conditions.connect() as conn:
        assert conditions_db.lookup(conn, 1, "pmt_gains", 50) is not None
