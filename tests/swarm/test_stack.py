"""The grid as a Docker Swarm stack (docs/deploy.md), from nothing: the engine started if none answers, the
images built, `juno-dcs up --engine swarm` deploying every program as a service on the host's network, then the
three e2e stories (a data-taking day, a production, a user task) run unchanged against it while one replica of
every doubled service is killed. Slow (images and a second grid): `make test-swarm`, part of `make test-all`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymysql  # type: ignore[import-untyped]
import pytest
from psycopg.conninfo import make_conninfo

from juno_dcs.grid.home import GridHome
from juno_dcs.swarm import databases, stack
from juno_dcs.swarm import engine as docker
from juno_dcs.swarm.runner import stack_name
from tests.conftest import CHECKOUT, JUNO_DCS, Grid, free_base_port, run
from tests.e2e.shell import Shell
from tests.e2e.stories import DataTakingDay

pytestmark = [pytest.mark.slow, pytest.mark.swarm]


@pytest.fixture(scope="module")
def swarm_grid(grids_root: Path) -> Iterator[Grid]:
    build = run([JUNO_DCS, "images", "build", "--json"], timeout=3600)
    print("images:", build.stdout)
    grid = Grid(home=grids_root / "swarm", base_port=free_base_port())
    proc = grid.up("--engine", "swarm", check=False)
    if proc.returncode != 0:
        grid.juno_dcs("down", "--purge", check=False)
        raise AssertionError(f"up --engine swarm failed:\n{proc.stdout}\n{proc.stderr}")
    yield grid
    engine, stack_volumes = engine_of(grid), databases.volume_names(stack_name(GridHome(grid.home)))
    grid.juno_dcs("down", "--purge", check=False)
    left = set(stack_volumes) & set(engine.run("volume", "ls", "-q").stdout.split())
    assert not left, left  # the purge took the databases' volumes


def engine_of(grid: Grid) -> docker.Engine:
    return docker.Engine(str(grid.state()["docker_host"]))


def containers(grid: Grid, service: str) -> list[str]:
    name = f"{stack_name(GridHome(grid.home))}_{service}"
    out = engine_of(grid).run("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}").stdout
    return out.split()


def wait_healthy(grid: Grid, timeout: float = 600) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    status = grid.status()
    while not status["healthy"] and time.monotonic() < deadline:
        time.sleep(3)
        status = grid.status()
    assert status["healthy"], {k: v for k, v in status.items() if k in ("down", "health")}
    return status


# the first test builds the images (about 10 minutes from nothing, seconds when cached) and deploys the stack
@pytest.mark.timeout(3600)
def test_every_program_runs_as_a_service_and_the_doubled_ones_twice(swarm_grid: Grid) -> None:
    status = wait_healthy(swarm_grid)
    assert status["engine"] == "swarm"
    processes = status["processes"]
    assert isinstance(processes, dict)
    for name, info in processes.items():
        want = stack.replicas(name)
        assert info["description"] == f"{want}/{want} replicas", (name, info)
    assert {n for n in processes if stack.replicas(n) == 2} >= {"rucio-server", "rucio-judge-evaluator",
                                                                  "rucio-conveyor-submitter", "fts-worker", "ingest"}
    # the same rendered home: the box's supervisor is not running, the stack file is there
    assert (swarm_grid.home / "etc" / "stack.yml").exists()
    assert "supervisor" not in status["services"]


def test_a_second_up_changes_nothing(swarm_grid: Grid) -> None:
    proc = swarm_grid.up()
    assert "restarted" not in proc.stdout, proc.stdout
    assert "built image" not in proc.stdout, proc.stdout


def _kill_one_replica_of_each(grid: Grid, names: list[str], killed: list[str]) -> None:
    time.sleep(20)  # the stories are under way
    for name in names:
        found = containers(grid, name)
        if found:
            engine_of(grid).run("kill", found[0], check=False)
            killed.append(name)
        time.sleep(1)


@pytest.mark.timeout(3000)
def test_the_e2e_stories_run_unchanged_while_replicas_are_killed(swarm_grid: Grid, tmp_path: Path) -> None:
    wait_healthy(swarm_grid)
    doubled = sorted(n for n in swarm_grid.status()["processes"] if stack.replicas(n) == 2)  # type: ignore[union-attr]
    killed: list[str] = []
    killer = threading.Thread(target=_kill_one_replica_of_each, args=(swarm_grid, doubled, killed), daemon=True)
    killer.start()
    env = {**os.environ, "JUNO_TEST_GRID_HOME": str(swarm_grid.home)}
    stories = [str(CHECKOUT / "tests" / "e2e" / f"test_{s}.py") for s in ("data_taking_day", "production",
                                                                          "user_task")]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *stories],
                          cwd=CHECKOUT, env=env, capture_output=True, text=True, timeout=2700, check=False)
    killer.join(timeout=120)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert killed == doubled, (killed, doubled)
    # the orchestrator brought every killed replica back
    status = wait_healthy(swarm_grid)
    assert status["down"] == {}, status["down"]
    (tmp_path / "stories.txt").write_text(proc.stdout)
    print(json.dumps({"killed": killed}))


@pytest.mark.timeout(1200)
def test_a_service_that_cannot_start_is_named_by_up_and_the_rest_keeps_running(swarm_grid: Grid,
                                                                                 tmp_path: Path) -> None:
    """An operator's nginx template that nginx refuses: `up` stops naming the service and Docker's reason; the
    swarm rolls nginx back to its previous specification with its previous configuration (a versioned Docker
    config), so the whole grid runs as before; `up` with the package's template changes nothing more."""
    wait_healthy(swarm_grid)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "nginx.conf").write_text("this is not an nginx configuration;\n")
    env = {**os.environ, "JUNO_DCS_ETC_DIR": str(tmp_path)}
    proc = run([JUNO_DCS, "up", "--home", str(swarm_grid.home)], env=env, check=False, timeout=1100)
    try:
        check_refused(swarm_grid, proc)
    finally:
        swarm_grid.up()  # the package's template again
    wait_healthy(swarm_grid)


def check_refused(swarm_grid: Grid, proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode != 0, proc.stdout
    # the old nginx answered until the swarm replaced it: `up` waits for the update's end, not for an answer
    assert "nginx did not come up after its change and the swarm rolled it back" in proc.stderr, proc.stderr
    # rolled back with the configuration it ran with: the grid is whole again without another `up`
    status = wait_healthy(swarm_grid, timeout=180)
    processes = status["processes"]
    assert isinstance(processes, dict)
    assert processes["nginx"]["state"] == "RUNNING", processes["nginx"]
    nginx_conf = swarm_grid.home / "etc" / "nginx" / "nginx.conf"
    assert "this is not an nginx configuration" in nginx_conf.read_text()  # the home has the refused file


def _running_tasks(grid: Grid) -> int:
    stack_label = f"label=com.docker.stack.namespace={stack_name(GridHome(grid.home))}"
    return len(engine_of(grid).run("ps", "-q", "--filter", stack_label).stdout.split())


@pytest.mark.timeout(1800)
def test_a_drained_node_comes_back_and_a_new_day_arrives_exactly_once(swarm_grid: Grid, tmp_path: Path) -> None:
    """The swarm's one node (every site) drained: every container stops; made active again: the orchestrator
    starts them all, and a day delivered afterwards reaches every site of the share, each file once."""
    wait_healthy(swarm_grid)
    engine = engine_of(swarm_grid)
    node = engine.run("node", "ls", "--format", "{{.ID}}").stdout.split()[0]
    engine.run("node", "update", "--availability", "drain", node)
    try:
        deadline = time.monotonic() + 300
        while _running_tasks(swarm_grid) and time.monotonic() < deadline:
            time.sleep(3)
        assert _running_tasks(swarm_grid) == 0
        assert swarm_grid.status()["healthy"] is False
    finally:
        engine.run("node", "update", "--availability", "active", node)
    wait_healthy(swarm_grid)
    day = DataTakingDay(Shell(swarm_grid, "rawdata", tmp_path), files=10)
    day.start()
    per_block = day.files // 2
    for block in day.wait():  # closed, every rule of the share OK: each file once at each RSE of the share
        held = {rse: n for site in block["sites"].values() for rse, n in site["rses"].items()}
        assert held == dict.fromkeys(day.blocks[block["name"]], per_block), (block["name"], held)


def catalogue_and_conditions(grid: Grid) -> tuple[int, int]:
    """Rows the grid keeps in its stack's two databases: Rucio's DIDs and the condition payloads' tables."""
    state = grid.state()
    with psycopg.connect(make_conninfo(str(state["pg_admin_url"]), dbname=str(state["db_name"]))) as conn:
        row = conn.execute("SELECT count(*) FROM rucio.dids").fetchone()
    dids = int(row[0]) if row else 0
    mysql = pymysql.connect(host="127.0.0.1", port=int(str(state["base_port"])) + 36, user="root",
                            password=str(state["db_admin_password"]))
    try:
        with mysql.cursor() as cur:
            cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                        (f"{state['db_name']}_cond",))
            tables = int(cur.fetchone()[0])  # type: ignore[index]
    finally:
        mysql.close()
    return dids, tables


def volume_ids(grid: Grid) -> dict[str, str]:
    """The databases' volumes and when each was made: a volume made again would lose what the grid wrote."""
    engine = engine_of(grid)
    return {v: engine.run("volume", "inspect", "--format", "{{.CreatedAt}}", v).stdout.strip()
            for v in databases.volume_names(stack_name(GridHome(grid.home)))}


@pytest.mark.timeout(1800)
def test_the_databases_keep_their_data_when_killed_and_across_down_and_up(swarm_grid: Grid) -> None:
    """The stack's own PostgreSQL and MariaDB: killed, the swarm restarts them on their named volumes and the
    grid is whole again; `down` keeps the volumes, and the next `up` finds the catalogue as it was."""
    wait_healthy(swarm_grid)
    before = catalogue_and_conditions(swarm_grid)
    assert before[0] > 0, before
    assert before[1] > 0, before
    made = volume_ids(swarm_grid)
    for name in databases.SERVICES:
        (container,) = containers(swarm_grid, name)
        engine_of(swarm_grid).run("kill", container)
    wait_healthy(swarm_grid)
    assert catalogue_and_conditions(swarm_grid) == before
    swarm_grid.juno_dcs("down")
    assert volume_ids(swarm_grid) == made  # kept
    swarm_grid.up()
    wait_healthy(swarm_grid)
    assert catalogue_and_conditions(swarm_grid) == before
    assert volume_ids(swarm_grid) == made
