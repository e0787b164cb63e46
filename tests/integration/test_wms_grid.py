"""Workload management in the whole grid: productions through the grid's own dispatcher, agent, pilot factory,
pilots, payloads, conditions (through Squid), Rucio and the transfer service; nothing started by the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from juno_dcs.grid.home import GridHome
from juno_dcs.grid.launcher import root_client
from juno_dcs.grid.supervisor import Supervisor
from juno_dcs.wms.client import WmsClient
from juno_dcs.wms.credentials import user_token
from juno_dcs.wms.models import JobSpec
from tests.conftest import BIN, Grid, run

RUN = 4321


def _wait(what: str, check: Callable[[], Any], timeout: float, every: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def _prod(grid: Grid, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "juno-prod"), *args], env=grid.env("production"), capture_output=True,
                          text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"juno-prod {args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _status(grid: Grid, name: str) -> dict[str, Any]:
    return json.loads(_prod(grid, "status", name, "--json").stdout)  # type: ignore[no-any-return]


def _wms(grid: Grid, account: str = "root") -> WmsClient:
    """The grid's dispatcher with `account`'s token, as `eval "$(juno-dcs env --account ACCOUNT)"` gives it."""
    env = grid.env(account)
    return WmsClient(env["JUNO_WMS_URL"], token=user_token(env))


@pytest.fixture(scope="module")
def tag(grid: Grid) -> str:
    """A locked global tag matching the payloads' detector, made as the conditions writer."""
    name = f"GT-WMS-{uuid.uuid4().hex[:6]}"
    out = run([str(BIN / "juno-payload"), "make-conditions", "--tag", name, "--runs", "1-999999",
               "--home", str(grid.home)])
    assert json.loads(out.stdout)["state"] == "locked"
    return name


def _steering(tmp_path: Path, **fields: Any) -> Path:
    path = tmp_path / f"{fields['name']}.yaml"
    path.write_text(yaml.safe_dump(fields))
    return path


def _job_states(history: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(h["attempt"], h["state"]) for h in history]


@pytest.mark.slow  # 20 jobs x 4 steps through a dispatcher restart: about 2 minutes (tests/e2e has a small one)
@pytest.mark.timeout(900)  # 80 payloads on 2 cores
def test_a_production_runs_end_to_end_through_a_dispatcher_restart(grid: Grid, tag: str, tmp_path: Path) -> None:
    """20 jobs detsim -> elecsim -> cal -> rec at several sites; the dispatcher is restarted mid-production:
    nothing is lost, no job runs twice to completion, every output is registered, attached and replicated by
    rule to the destination, and the logs can be fetched."""
    name, campaign, jobs = f"e-grid-{uuid.uuid4().hex[:4]}", "ITwms", 20
    steering = _steering(
        tmp_path, name=name, campaign=campaign, software="J25.1.0",
        args={"detsim": "gun --particles e- --momentums 2.0"}, events_per_job=10, jobs=jobs,
        workflow=["detsim", "elecsim", "cal", "rec"], conditions_tag=tag, run=RUN,
        output_storage="site-local", destinations=["CNAF_DISK"], lifetime="2 days",
    )
    assert "20 detsim jobs" in _prod(grid, "submit", str(steering)).stdout

    def some_elecsim_finished() -> bool:
        steps = {s["step"]: s for s in _status(grid, name)["steps"]}
        return bool(steps["elecsim"]["jobs_by_state"].get("finished", 0) >= 3)

    _wait("three elecsim jobs finished", some_elecsim_finished, 600)
    sup = run([str(BIN / "juno-dcs"), "status", "--home", str(grid.home), "--json"])
    assert json.loads(sup.stdout)["processes"]["wms-server"]["state"] == "RUNNING"
    home = GridHome(grid.home)
    # mid-production: the pilots and the agent see it go and come back
    Supervisor(home, home.load_state()).restart_program("wms-server")

    def done() -> dict[str, Any] | None:  # the dispatcher takes a moment to listen again after its restart
        proc = _prod(grid, "status", name, "--json", check=False)
        if proc.returncode != 0:
            assert "cannot reach the dispatcher" in proc.stderr, proc.stderr
            return None
        report: dict[str, Any] = json.loads(proc.stdout)
        return report if report["state"] == "done" else None

    status = _wait("the production done", done, 900, 5)
    for step in status["steps"]:
        assert step["failures"] == [], step
        assert step["jobs_created"] == jobs, step
        assert step["jobs_by_state"] == {"finished": jobs}, step
        assert step["files"] == jobs, step
        assert step["closed"], step

    wms = _wms(grid)
    sites: Counter[str] = Counter()
    for step in status["steps"]:
        for job in wms.jobs(task_id=step["task_id"], limit=1000):
            detail = wms.job(job["job_id"])
            finished = [h for h in detail["history"] if h["state"] == "finished"]
            assert len(finished) == 1, detail["history"]  # nothing ran twice to completion
            sites[detail["site"]] += 1
    assert len(sites) >= 3, sites  # spread over several sites

    client = root_client(GridHome(grid.home), GridHome(grid.home).load_state())
    for step in ("detsim", "elecsim", "cal", "rec"):
        dataset = f"mc.{campaign}.{name}.{step}"
        names = sorted(f["name"] for f in client.list_files("mc", dataset))
        assert names == [f"mc.{campaign}.{name}.{step}.{n:06d}.root" for n in range(1, jobs + 1)]
        logs = list(client.list_files("mc", f"{dataset}.log"))
        assert len(logs) == jobs
    final = f"mc.{campaign}.{name}.rec"
    rules = [r for r in client.list_did_rules("mc", final) if r["rse_expression"] == "CNAF_DISK"]
    assert len(rules) == 1

    def rule_done() -> bool:  # OK with a lock per file: files attached late are evaluated into it after a while
        rule = client.get_replication_rule(rules[0]["id"])
        return bool(rule["state"] == "OK" and rule["locks_ok_cnt"] == jobs)

    _wait("the final rule at CNAF_DISK OK for every file", rule_done, 900, 5)
    at_cnaf = {r["name"] for r in client.list_replicas([{"scope": "mc", "name": final}], rse_expression="CNAF_DISK")
               if r["rses"].get("CNAF_DISK")}
    assert len(at_cnaf) == jobs

    # a job's log, with the stock rucio client as the production account
    log = f"mc.{campaign}.{name}.rec.000007.log.tgz"
    grid.rucio("download", "--dir", str(tmp_path), f"mc:{log}", account="production")
    with tarfile.open(tmp_path / "mc" / log) as tar:
        members = tar.getnames()
        assert any(m.endswith("payload.stdout") or "stdout" in m for m in members), members
        stdout = next(m for m in members if "stdout" in m)
        text = tar.extractfile(stdout).read().decode()  # type: ignore[union-attr]
    assert '"step": "rec"' in text


@pytest.mark.slow  # a failed attempt, then a retry at another site
def test_a_muon_job_at_a_low_memory_site_is_retried_at_jinr(grid: Grid, tmp_path: Path) -> None:
    """A muon-like detsim job asks for 250 MB, is brokered to a 3 GB/core site (300 MB here), exceeds it
    (error 1235) and is retried by the rules with twice the memory, which only JINR (16 GB/core) gives."""
    name = f"mu-grid-{uuid.uuid4().hex[:4]}"
    steering = _steering(
        tmp_path, name=name, campaign="ITwms", software="J25.1.0",
        args={"detsim": "--muon-mb-per-event 500 gun --particles mu- --momentums-interp KineticEnergy "
                          "--momentums 10000 --volume pTarget"},
        events_per_job=1, jobs=1, workflow=["detsim"], output_storage="site-local", destinations=["IHEP_DISK"],
        lifetime="2 days", resources={"detsim": {"memory_mb": 250}},
    )
    _prod(grid, "submit", str(steering))
    status = _wait("the muon production done", lambda: (s := _status(grid, name))["state"] == "done" and s, 600)
    step = status["steps"][0]
    assert step["jobs_by_state"] == {"finished": 1}
    assert step["files"] == 1
    wms = _wms(grid)
    (job,) = wms.jobs(task_id=step["task_id"])
    detail = wms.job(job["job_id"])
    assert detail["site"] == "JINR"
    assert detail["attempt"] >= 2
    failed = [h for h in detail["history"] if h["state"] == "failed"]
    assert failed, detail["history"]
    assert all("1235" in h["reason"] or "memory" in h["reason"] for h in failed), detail["history"]
    assert detail["memory_mb"] >= 500
    first = next(h for h in detail["history"] if h["state"] == "assigned")
    assert not first["reason"].startswith("JINR"), first  # brokered first to a low-memory site


def _pilot_processes(pilot_id: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmd = proc.info["cmdline"] or []
            env = proc.info["environ"] or {}
        except psutil.Error:
            continue
        if pilot_id in cmd or env.get("JUNO_PILOT_ID") == pilot_id:
            found.append(proc)
    return found


@pytest.mark.slow  # waits out a job lease: about a minute
def test_a_pilot_killed_with_sigkill_has_its_job_requeued(grid: Grid) -> None:
    """The pilot running a job gets SIGKILL: its payload dies with it (no orphan left in the slot), the lease
    ends, the agent requeues the job as lost (1201) and another pilot finishes it."""
    wms = _wms(grid, "alice")
    task_id, (job_id,) = wms.submit_task(
        f"sigkill-{uuid.uuid4().hex[:6]}", "user", "alice",
        [JobSpec(key="sleeper", transformation="exec", args=["sleep", "20"], walltime_s=600, site="IHEP")])

    def running_pilot() -> str | None:
        job = wms.job(job_id)
        return job["pilot_id"] if job["state"] == "running" and job["pilot_id"] else None

    pilot_id = _wait("the job running", running_pilot, 300, 1)
    victims = _pilot_processes(pilot_id)
    pilots = [p for p in victims if pilot_id in (p.info["cmdline"] or [])]
    payloads = [p for p in victims if p not in pilots]
    assert pilots, f"no pilot process of {pilot_id} among {victims}"
    assert payloads, f"no payload process of pilot {pilot_id} among {victims}"
    for proc in pilots:
        os.kill(proc.pid, signal.SIGKILL)
    _, orphans = psutil.wait_procs(payloads, timeout=5)  # well before its sleep ends
    assert not orphans, f"the payload outlived its SIGKILLed pilot: {orphans}"
    job = _wait("the job finished again", lambda: (j := wms.job(job_id))["state"] == "finished" and j, 300, 2)
    assert job["attempt"] == 2
    lost = [h for h in job["history"] if h["state"] == "failed"]
    assert len(lost) == 1, job["history"]
    assert "1201" in lost[0]["reason"] or "lost" in lost[0]["reason"], job["history"]
    assert job["history"][-1]["state"] == "finished"
    assert wms.task(task_id)["jobs_by_state"] == {"finished": 1}



def test_a_jsub_task_of_two_jobvar_groups_runs_on_the_grids_pilots(grid: Grid, tmp_path: Path) -> None:
    """A user's jsub task (2 particles x 2 energies) through the grid's dispatcher and pilots: the cross product
    of sub-jobs, each output uploaded to the user's dataset in Rucio, and a sub-job's log fetched with getlog."""
    task = tmp_path / "scan.yaml"
    task.write_text(yaml.safe_dump({
        "taskName": f"scan{uuid.uuid4().hex[:6]}", "experiment": "juno",
        "backend": {"type": "dispatcher", "memoryMB": 200, "walltime": 600},
        "splitter": {"mode": "splitByJobvars", "jobvarLists": {
            "particle": {"type": "enumerate", "list": ["e-", "gamma"], "group": "particle"},
            "energy": {"type": "enumerate", "list": [1, 3], "group": "energy"},
            "tag": {"type": "composite_string", "value": "$(particle)_$(energy)MeV"}}},
        "workflow": {"steps": ["scan"], "scan": {
            "type": "cmd", "cmd": "echo particle=$(particle) energy=$(energy) > $(tag).txt",
            "outputUpload": ["$(tag).txt"]}},
    }))
    env = dict(grid.env("alice"), JSUB_HOME=str(tmp_path / "jsub"))

    def jsub(*args: str) -> str:
        proc = subprocess.run([str(BIN / "jsub"), *args], env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert proc.returncode == 0, f"jsub {args}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout

    created = jsub("create", str(task), "--submit")
    task_id = created.split()[1]
    assert "4 sub-job(s)" in created, created

    def finished() -> dict[str, Any] | None:
        state = json.loads(jsub("status", task_id, "--jobs", "--json"))
        return state if state["by_state"] == {"finished": 4} else None

    state = _wait("the jsub task finished", finished, 600)
    client = root_client(GridHome(grid.home), GridHome(grid.home).load_state())
    datasets = list(client.list_dids("user.alice", {"name": f"jsub.{state['uid']}"}, did_type="dataset"))
    assert datasets, f"no dataset jsub.{state['uid']}"
    names = sorted(f["name"] for f in client.list_files("user.alice", f"jsub.{state['uid']}"))
    tags = sorted(n.rsplit(".", 2)[-2] for n in names)
    assert tags == ["e-_1MeV", "e-_3MeV", "gamma_1MeV", "gamma_3MeV"], names  # the cross product
    log = jsub("getlog", task_id, "1", "--dest", str(tmp_path / "logs"))
    assert list((tmp_path / "logs").rglob("*.log.tgz")), log
