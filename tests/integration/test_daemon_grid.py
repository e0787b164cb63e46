"""Two instances of one daemon in the grid at once: a second `juno-wms agent` beside the grid's own shares the
brokerage with it by heartbeats, and every job is brokered exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from juno_dcs.grid.home import GridHome
from juno_dcs.grid.wms import database_url
from juno_dcs.wms.client import WmsClient
from juno_dcs.wms.credentials import user_token
from juno_dcs.wms.models import JobSpec
from tests.conftest import BIN, Grid

AGENT = "juno-wms agent"


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.5)


def _agents(url: str) -> list[tuple[int, object, object]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT pid, started_at, updated_at FROM daemons.heartbeat WHERE executable = %s",
                            (AGENT,)).fetchall()
    return [(int(r[0]), r[1], r[2]) for r in rows]


def _unbrokerable(log: Path) -> int:
    total = 0
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"cycle: ' in line:
            total += json.loads(json.loads(line)["message"].removeprefix("cycle: ").replace("'", '"'))["unbrokerable"]
    return total


@pytest.mark.slow  # a second agent until the heartbeats settle
def test_a_second_agent_shares_the_brokerage_with_the_grids_own(grid: Grid, tmp_path: Path) -> None:
    home = GridHome(grid.home)
    url = database_url(home.load_state())
    assert len(_agents(url)) == 1  # the grid's agent beats
    log = tmp_path / "second-agent.log"
    with log.open("wb") as out:
        second = subprocess.Popen([str(BIN / "juno-wms"), "agent", "--config", str(home.etc / "wms.yaml"),
                                   "--sleep-time", "1", "--log-json"],
                                  env=grid.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait("two agents beat", lambda: len(_agents(url)) == 2, 60)
        mine = next(a for a in _agents(url) if a[0] == second.pid)

        def both_know() -> bool:  # the grid's agent beat after the second one's first beat; the second saw two
            theirs = [a for a in _agents(url) if a[0] != second.pid]
            return bool(theirs) and theirs[0][2] > mine[1] and " of 2" in log.read_text()  # type: ignore[operator]

        _wait("both agents know there are two", both_know, 60)
        # 200 jobs no queue can ever take (1,024 cores): brokerage fails each one, once, without running anything
        specs = [JobSpec.model_validate({"key": f"j{i}", "transformation": "detsim", "cores": 1024})
                 for i in range(200)]
        env = grid.env("production")  # what `eval "$(juno-dcs env --account production)"` sets
        client = WmsClient(env["JUNO_WMS_URL"], timeout=60, token=user_token(env))
        task_id, job_ids = client.submit_task(f"shared-{uuid.uuid4().hex[:6]}", "production", "production", specs)
        _wait("every job brokered", lambda: client.task(task_id)["jobs_by_state"] == {"failed": 200}, 120)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT job_id, count(*) FROM wms.job_history WHERE state = 'failed' "
                            "AND job_id = ANY(%s) GROUP BY job_id", (job_ids,)).fetchall()
    assert len(rows) == 200
    assert {int(n) for _, n in rows} == {1}  # each job brokered once
    done_by_second = _unbrokerable(log)
    assert 0 < done_by_second < 200, done_by_second  # the second agent did its share, the grid's agent the rest
    assert len(_agents(url)) == 1  # the second agent removed its heartbeat when it stopped
