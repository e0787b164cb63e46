"""jsub against a real dispatcher (`juno-wms serve` on a free port, a throwaway PostgreSQL database, the agent
in-process) and the test session's grid's real Rucio (user alice). The test plays pilot with WmsClient.get_job /
finish to fail some sub-jobs; `jsub reschedule` must re-run only those. The jsub CLI runs as a subprocess (Rucio
reads its configuration once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from juno_dcs.wms.agent import Agent
from juno_dcs.wms.models import FinishReport, LogFile
from tests.conftest import Grid
from tests.integration.wms_helpers import (
    Server,
    agent_for,
    grid_auth,
    pilot_client,
    throwaway_database,
    user_client,
    write_config,
)

BIN = Path(sys.executable).parent


TASK = """
taskName: ana
backend:
  type: dispatcher
  site: IHEP
  memoryMB: 200
  maxAttempts: 1
splitter:
  mode: splitByJobvars
  evtMaxPerJob: 5
  jobvarLists:
    energy: {type: enumerate, list: [1, 2], group: e}
    particle: {type: enumerate, list: [e-, gamma], group: p}
workflow:
  steps: [detsim, summary]
  detsim: {particles: '$(particle)', momentums: '$(energy)'}
  summary:
    type: cmd
    cmd: 'echo $(particle) $(energy) > summary.txt'
    outputUpload: [summary.txt]
splitter_note: x
"""


@pytest.fixture(scope="module")
def server(grid: Grid, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    with throwaway_database("jsub_test") as url:  # checking the grid issuer's tokens, as the grid's dispatcher
        config = write_config(tmp_path_factory.mktemp("wms"), url, lease_s=30, auth=grid_auth(grid.home))
        with Server(config, workers=1) as srv:
            yield srv, config


@pytest.fixture
def agent(server: tuple[Server, Path]) -> Iterator[Agent]:
    with agent_for(server[1]) as a:
        yield a


def grid_env(grid: Grid, account: str = "alice") -> dict[str, str]:
    """What `eval "$(juno-dcs env --account A)"` sets for the grid: RUCIO_CONFIG and the grid's CAs."""
    exports = grid.juno_dcs("env", "--account", account).stdout
    out = {}
    for line in exports.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        out[key] = value.strip("'")
    return out


def jsub(grid: Grid, registry: Path, url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **grid_env(grid), "JUNO_WMS_URL": url, "JSUB_HOME": str(registry)}  # our dispatcher
    proc = subprocess.run([str(BIN / "jsub"), *args], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"jsub {args} failed {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def settle(agent: Agent) -> None:
    while agent.run_once().full:
        pass


def by_state(grid: Grid, registry: Path, url: str, task: str = "1") -> dict[str, int]:
    out = jsub(grid, registry, url, "status", task, "--json").stdout
    return json.loads(out)["by_state"]  # type: ignore[no-any-return]


def make_task(grid: Grid, tmp_path: Path, url: str) -> Path:
    (tmp_path / "ana.yaml").write_text(TASK.replace("splitter_note: x\n", ""))
    registry = tmp_path / "reg"
    out = jsub(grid, registry, url, "create", str(tmp_path / "ana.yaml"))
    assert "task 1 created: ana." in out.stdout
    assert "4 sub-job(s), backend dispatcher, outputs user.alice:jsub.ana." in out.stdout
    return registry


def test_an_unknown_generator_option_is_refused_at_create_and_no_job_exists(
        grid: Grid, tmp_path: Path, server: tuple[Server, Path]) -> None:
    url = server[0].url
    wms = user_client(url, grid.home, "alice")
    before = {t["name"] for t in wms.tasks()}
    (tmp_path / "bad.yaml").write_text(
        "taskName: badgen\nbackend: {type: dirac, site: IHEP}\nsoftVersion: J25.1.0\n"
        "splitter: {mode: splitByEvent, njobs: 3, evtMaxPerJob: 5}\n"
        "workflow: {steps: [detsim], detsim: {additionalArgs: 'gun --particles e+ --nuclear U-238'}}\n")
    registry = tmp_path / "reg"
    proc = jsub(grid, registry, url, "create", str(tmp_path / "bad.yaml"), "--submit", check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"jsub: error: {tmp_path / 'bad.yaml'}: workflow.detsim: juno-payload detsim: "
                                   "gun --nuclear: no such option (the options of gun: --particles, --momentums, "
                                   "--momentums-mode, --momentums-extra-params, --momentums-interp, --positions, "
                                   "--volume, --material)"), proc.stderr
    assert proc.stdout == ""
    assert not list(registry.glob("tasks/*.json"))
    assert {t["name"] for t in wms.tasks()} == before  # nothing reached the dispatcher
    (tmp_path / "norel.yaml").write_text(
        "taskName: norel\nbackend: {type: dirac}\nsoftVersion: centos7_amd64_gcc830/Release/J99.0.0\n"
        "splitter: {mode: splitByEvent, njobs: 1, evtMaxPerJob: 5}\nworkflow: {steps: [detsim]}\n")
    proc = jsub(grid, registry, url, "create", str(tmp_path / "norel.yaml"), check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"jsub: error: {tmp_path / 'norel.yaml'}: softVersion: release 'J99.0.0' is "
                                  "installed at no site; the releases are J20v1r0-Pre2 (CNAF, IHEP, IN2P3, JINR), "
                                  "J23.1.0 (CNAF, IHEP), "), proc.stderr
    assert not list(registry.glob("tasks/*.json"))


def test_submit_play_pilot_fail_some_reschedule_only_those(grid: Grid, tmp_path: Path, server: tuple[Server, Path],
                                                           agent: Agent) -> None:
    url = server[0].url
    wms = user_client(url, grid.home, "alice")  # jsub's user
    pilot = pilot_client(url, grid.home)  # the test plays pilot with the pilots' token
    registry = make_task(grid, tmp_path, url)
    out = jsub(grid, registry, url, "submit", "1")
    assert "submitted: dispatcher task" in out.stdout
    record = json.loads((registry / "tasks" / "1.json").read_text())
    task_id, uid = record["task_id"], record["uid"]
    # replaying submit creates nothing twice
    jsub(grid, registry, url, "submit", "1")
    assert len(wms.jobs(task_id=task_id)) == 4
    task = wms.task(task_id)
    assert task["kind"] == "user"
    assert task["owner"] == "alice"
    assert task["name"] == f"jsub.alice.{uid}"
    settle(agent)
    jobs = {}
    for _ in range(4):
        job = pilot.get_job("fake-pilot", "IHEP", "IHEP", 1, 400, 3600)
        assert job is not None
        jobs[int(job.key)] = job
    assert pilot.get_job("fake-pilot", "IHEP", "IHEP", 1, 400, 3600) is None
    first = jobs[1]
    assert first.transformation == "exec"
    assert first.args[:2] == ["bash", "-c"]
    assert "juno-payload detsim --evtmax 5 --output detsim.root --seed 1 gun --particles e- --momentums 1\n" in (
        first.args[2])
    assert [o.name for o in first.outputs] == [f"{uid}.00001.detsim.root", f"{uid}.00001.summary.txt"]
    assert first.log is not None
    assert first.log.name == f"{uid}.00001.log.tgz"
    assert first.env["JSUB_JOBID"] == "1"
    # sub-jobs 1 and 4 finish, 2 and 3 fail (payload error, max_attempts 1: they stay failed)
    for jobid, job in sorted(jobs.items()):
        pilot.heartbeat(job.job_id, "fake-pilot", "running")
        if jobid in (1, 4):
            pilot.finish(job.job_id, "fake-pilot", FinishReport(state="finished", exit_code=0))
        else:
            pilot.finish(job.job_id, "fake-pilot", FinishReport(state="failed", exit_code=2, error_code=1305,
                                                              error_diag="payload exited 2"))
    assert by_state(grid, registry, url) == {"failed": 2, "finished": 2}
    lines = jsub(grid, registry, url, "status", "1", "--jobs").stdout
    assert "1305 bad_input: payload exited 2" in lines  # exit 2: bad input (wms-errors.yaml)
    grouped = jsub(grid, registry, url, "status", "1").stdout.splitlines()
    assert grouped[1:] == [f"  failed     2 x bad_input: payload exited N [e.g. sub-job 2 (job {jobs[2].job_id})]"]
    out = jsub(grid, registry, url, "reschedule", "1")
    assert "2 failed sub-job(s) rescheduled: 2, 3" in out.stdout
    after = {j["job_id"]: j for j in wms.jobs(task_id=task_id)}
    assert after[jobs[1].job_id]["state"] == "finished"
    assert after[jobs[1].job_id]["attempt"] == 1
    assert after[jobs[4].job_id]["state"] == "finished"
    for jobid in (2, 3):
        assert after[jobs[jobid].job_id]["state"] not in ("failed", "finished")
        assert after[jobs[jobid].job_id]["attempt"] == 2
    assert "0 failed sub-job(s) rescheduled" in jsub(grid, registry, url, "reschedule", "1").stdout
    # the rescheduled ones run again, and only they
    settle(agent)
    again = [pilot.get_job("fake-pilot", "IHEP", "IHEP", 1, 400, 3600) for _ in range(3)]
    assert sorted(int(j.key) for j in again if j is not None) == [2, 3]


def test_getlog_fetches_the_log_the_pilot_uploaded(grid: Grid, tmp_path: Path, server: tuple[Server, Path],
                                                   agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    from juno_dcs.pilot.stager import RucioStager

    for key, value in grid_env(grid).items():
        monkeypatch.setenv(key, value)  # the stager sets RUCIO_CONFIG too: restored after the test

    url = server[0].url
    wms = user_client(url, grid.home, "alice")  # jsub's user
    pilot = pilot_client(url, grid.home)  # the test plays pilot with the pilots' token
    registry = make_task(grid, tmp_path, url)
    jsub(grid, registry, url, "submit", "1")
    settle(agent)
    job = pilot.get_job("fake-pilot", "IHEP", "IHEP", 1, 400, 3600)
    assert job is not None
    assert job.log is not None
    work = tmp_path / "job"
    work.mkdir()
    (work / "payload.stdout").write_text(f"hello from sub-job {job.key}\n")
    with tarfile.open(work / job.log.name, "w:gz") as tar:
        tar.add(work / "payload.stdout", arcname=f"job-{job.job_id}-1/payload.stdout")
    stager = RucioStager(grid.home / "etc" / "clients" / "alice.cfg")
    uploaded = stager.stage_out(work / job.log.name, job.log.scope, job.log.name, job.log.dataset, job.output_rse)
    pilot.finish(job.job_id, "fake-pilot", FinishReport(
        state="finished", exit_code=0, log=LogFile(scope=uploaded.scope, name=uploaded.name, rse=uploaded.rse)))
    out = jsub(grid, registry, url, "getlog", "1", str(int(job.key)), "--dest", str(tmp_path / "logs"), "--print")
    assert f"hello from sub-job {job.key}" in out.stdout
    # the log dataset jsub created holds it
    record = json.loads((registry / "tasks" / "1.json").read_text())
    out = jsub(grid, registry, url, "dataset", "query", f"user.alice:{record['log_dataset']}")
    assert job.log.name in out.stdout
    # remove kills the remaining jobs
    out = jsub(grid, registry, url, "remove", "1")
    assert "killed" in out.stdout
    states = {j["state"] for j in wms.jobs(task_id=record["task_id"])}
    assert states <= {"cancelled", "finished"}
    assert "cancelled" in states
    assert "no task 1" in jsub(grid, registry, url, "status", "1", check=False).stderr
