"""`juno-dcs up` upgrades the schemas of an existing grid before its programs (re)start, and they work after.

A grid of the test's own (stopped and upgraded underneath: the session's grid stays as the other tests expect
it; slow, for `make test-all`, as it starts a grid) is made to look like one of release 0.1 (no version tables,
the probes' schema called `monitor`, a job failed with the pilot's old code): stopped, then `up`; and running,
with the probes' schema put back to version 1 underneath the programs, then `up` again."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Grid, start_grid

ADMIN = "postgresql://postgres@127.0.0.1:5432"


def _database(grid: Grid) -> str:
    return f"{ADMIN}/{grid.state()['db_name']}"


def _unhealthy(status: dict[str, object]) -> str:
    health = status["health"]
    assert isinstance(health, dict)
    return f"down: {status['down']}; failing: { {k: v for k, v in health.items() if not v.get('ok')} }"


def _healthy(grid: Grid, within: float = 300) -> None:
    """The grid reports healthy within `within` s (a restarted Rucio daemon beats again within seconds; on a
    loaded machine it takes longer)."""
    deadline = time.monotonic() + within
    while not (status := grid.status())["healthy"]:
        assert time.monotonic() < deadline, _unhealthy(status)
        time.sleep(5)


def _one(url: str, query: str) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return None if row is None else row[0]


@pytest.mark.timeout(900)  # three `up`s of the session's grid, each waits for every service
@pytest.mark.slow  # a grid of its own, stopped and started twice
@pytest.mark.timeout(1200)
def test_up_upgrades_a_release_grid_before_its_programs_start(grid_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUNO_DCS_START_TIMEOUT", "300")  # the machine is shared: the services may start slowly
    grid = start_grid(grid_tmp, "release")
    try:
        _upgrade_story(grid)
    finally:
        grid.juno_dcs("down", "--purge", check=False)


def _upgrade_story(grid: Grid) -> None:
    url = _database(grid)
    versions = grid.juno_dcs("db-versions")
    assert "wms" in versions.stdout
    assert "<-" not in versions.stdout, versions.stdout
    grid.juno_dcs("down")
    with psycopg.connect(url, autocommit=True) as conn:  # the grid as release 0.1 left it
        conn.execute("DROP SCHEMA schema_versions CASCADE")
        conn.execute("ALTER SCHEMA probes RENAME TO monitor")
        task = conn.execute("INSERT INTO wms.tasks (name, kind, owner, priority) VALUES ('release-0.1', 'user',"
                            " 'root', 1) RETURNING task_id").fetchone()
        assert task is not None
        conn.execute("INSERT INTO wms.jobs (task_id, key, spec, cores, memory_mb, walltime_s, max_attempts, priority,"
                     " state, error_code, error_class) VALUES (%s, 'old', '{}', 1, 250, 60, 1, 1, 'failed', 1300,"
                     " 'lost')", (task[0],))
        runs = conn.execute("SELECT count(*) FROM monitor.probe_run").fetchone()
    assert runs is not None
    assert runs[0] > 0, "the probes ran before the grid was stopped"
    stale = grid.juno_dcs("db-versions", check=False)
    assert stale.returncode == 1
    assert "<- run `juno-dcs db-upgrade`" in stale.stdout

    out = grid.up().stdout
    assert "schema wms upgraded from nothing to version 3" in out, out
    assert "schema probes upgraded from nothing to version 2" in out, out
    assert "schema fts upgraded from nothing to version 2" in out, out
    _healthy(grid)
    assert _one(url, "SELECT error_code FROM wms.jobs WHERE key = 'old'") == 1201
    assert _one(url, "SELECT to_regnamespace('monitor')") is None
    assert int(_one(url, "SELECT count(*) FROM probes.probe_run")) >= runs[0]  # type: ignore[call-overload]
    assert "<-" not in grid.juno_dcs("db-versions").stdout

    # a running grid whose probes' schema is behind: `up` stops its users, upgrades it, starts them again
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE schema_versions.probes SET version_num = '1'")
        conn.execute("ALTER SCHEMA probes RENAME TO monitor")
    out = grid.up().stdout
    assert "stopped probes while its schema upgrades" in out, out
    assert "schema probes upgraded from version 1 to version 2" in out, out
    assert "schema wms" not in out, out  # at head: untouched
    _healthy(grid)
    assert _one(url, "SELECT version_num FROM schema_versions.probes") == "2"
