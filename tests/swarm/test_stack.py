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

import pytest

from juno_dcs.grid.home import GridHome
from juno_dcs.swarm import engine as docker
from juno_dcs.swarm import stack
from juno_dcs.swarm.runner import stack_name
from tests.conftest import CHECKOUT, JUNO_DCS, Grid, free_base_port, run

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
    grid.juno_dcs("down", "--purge", check=False)


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
