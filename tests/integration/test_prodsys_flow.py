"""The production manager against the test session's grid's Rucio, a real dispatcher (`juno-wms serve` on a free
port) and a throwaway PostgreSQL database: submit, data-driven next steps, replays, two instances, pause,
extend, kill, closing and the final rules."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from juno_dcs.migrations.runner import upgrade_postgres
from juno_dcs.packaged import data_file
from juno_dcs.wms.client import WmsClient
from tests.conftest import Grid
from tests.integration.wms_helpers import client_auth, grid_auth, pilot_client, user_client

CHECKOUT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG = "postgresql://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def grid_is_up(grid: Grid) -> str | None:
    """None when the grid runs and its Rucio is healthy, else why not."""
    if not (grid.home / "etc" / "clients" / "production.cfg").exists():
        return f"no production.cfg in the grid at {grid.home}"
    proc = grid.juno_dcs("status", "--json", check=False)
    try:
        status = json.loads(proc.stdout)
    except ValueError:
        return f"juno-dcs status: {proc.stderr[-300:]}"
    return None if status.get("running") and status.get("health", {}).get("rucio", {}).get("ok") else \
        f"the grid at {grid.home} is not running and healthy"


def psql(sql: str, database: str = "postgres") -> str:
    proc = subprocess.run(["psql", f"{PG}/{database}", "-v", "ON_ERROR_STOP=1", "-tAc", sql], capture_output=True,
                          text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"psql {sql!r}: {proc.stderr}")
    return proc.stdout.strip()


def rucio_py(grid: Grid, code: str, account: str = "production") -> Any:
    """Run `code` (which sets `out`) with a rucio Client `c` of `account` in a process of its own (so that
    RUCIO_CONFIG is this grid's); `out` comes back through JSON."""
    env = grid.env(account)
    script = ("import json\nfrom rucio.client import Client\nc = Client()\nout = None\n" + code +
              "\nprint(json.dumps(out, default=str))\n")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    if proc.returncode != 0:
        raise AssertionError(f"rucio code failed:\n{code}\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def upload(grid: Grid, tmp_path: Path, name: str, dataset: str, rse: str = "IHEP_DISK", size: int = 4096) -> int:
    """A small file `mc:name` uploaded to `rse` as production and attached to `mc:dataset`; its size."""
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    proc = grid.rucio("upload", "--rse", rse, "--scope", "mc", str(path), account="production", check=False)
    assert f"Successfully uploaded file {name}" in proc.stderr, proc.stdout + proc.stderr
    rucio_py(grid, f"c.attach_dids('mc', {dataset!r}, [{{'scope': 'mc', 'name': {name!r}}}])")
    return size


@dataclass
class Stack:
    """A dispatcher and a prodsys configuration on one throwaway database."""

    database: str
    dispatcher_url: str
    config: Path
    wms_config: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]  # `juno-dcs env --account production`: the commands send its token (BEARER_TOKEN_FILE)
    wms: WmsClient  # the dispatcher, with production's token

    def prod(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN / "juno-prod"), "--config", str(self.config), *args], capture_output=True,
                              text=True, timeout=timeout, check=False, env=self.env)
        if check and proc.returncode != 0:
            raise AssertionError(f"juno-prod {args} failed with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def prod_async(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(BIN / "juno-prod"), "--config", str(self.config), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)

    def agent_once(self) -> None:
        subprocess.run([str(BIN / "juno-wms"), "agent", "--config", str(self.wms_config), "--run-once"],
                       capture_output=True, text=True, timeout=120, check=True)

    def status(self, production: str) -> dict[str, Any]:
        return json.loads(self.prod("status", production, "--json").stdout)  # type: ignore[no-any-return]


def start_stack(grid: Grid, tmp_path: Path) -> Stack:
    database = "prodsys_test_" + uuid.uuid4().hex[:10]
    psql(f"CREATE DATABASE {database}")
    url = f"{PG}/{database}"
    upgrade_postgres(url)  # what `juno-dcs up` does for the grid's database
    wms_config = tmp_path / "wms.yaml"
    wms_config.write_text(yaml.safe_dump({"database_url": url, "topology": str(data_file("topology.yaml")),
                                          "retry_rules": str(data_file("wms-retry.yaml")),
                                          "auth": grid_auth(grid.home)}))  # the grid issuer's tokens
    port = free_port()
    with (tmp_path / "wms.log").open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen([str(BIN / "juno-wms"), "serve", "--config", str(wms_config), "--port",
                                    str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    dispatcher = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{dispatcher}/v1/health", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"juno-wms serve did not come up: {(tmp_path / 'wms.log').read_text()[-2000:]}")
        time.sleep(0.3)
    config = tmp_path / "prod.yaml"
    config.write_text(yaml.safe_dump({
        "database_url": url, "dispatcher_url": dispatcher,
        "rucio": {"config": str(grid.home / "etc" / "clients" / "production.cfg"), "account": "production"},
        "policies_dir": str(data_file("placement")), "topology": str(data_file("topology.yaml")),
        "sleep": 1,
        # `juno-prod run` acts as the production client (its secret in the grid's 0600 file), as the grid's does
        "auth": client_auth(grid.home, "production").model_dump(mode="json"),
    }))
    return Stack(database, dispatcher, config, wms_config, process, grid.env("production"),
                 user_client(dispatcher, grid.home, "production"))


def stop_stack(stack: Stack) -> None:
    stack.process.terminate()
    try:
        stack.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        stack.process.wait()
    psql(f"DROP DATABASE IF EXISTS {stack.database} WITH (FORCE)")


def steering(tmp_path: Path, **changes: Any) -> tuple[Path, dict[str, Any]]:
    """A steering file with a unique name (its DIDs are new in the shared grid)."""
    data: dict[str, Any] = {
        "name": "it" + uuid.uuid4().hex[:12], "campaign": "ITprod", "software": "J25.1.0",
        "args": {"detsim": "gun --particles e- --momentums 1.0"}, "events_per_job": 5, "jobs": 3,
        "workflow": ["detsim", "elecsim"], "output_storage": "site-local",
        "destinations": ["IHEP_DISK", "CNAF_DISK"], "lifetime": "2 days",
        "resources": {"detsim": {"memory_mb": 100}, "elecsim": {"memory_mb": 100}},
    }
    data.update(changes)
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, data


# --- fixtures



@pytest.fixture(scope="module")
def stack(grid: Grid, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    why = grid_is_up(grid)
    assert why is None, why
    s = start_stack(grid, tmp_path_factory.mktemp("prodsys-stack"))
    yield s
    stop_stack(s)


def _jobs(stack: Stack, task_id: int) -> list[dict[str, Any]]:
    return stack.wms.jobs(task_id=task_id, limit=1000)


def _steps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["step"]: s for s in report["steps"]}


def _prodsys_jobs(stack: Stack, name: str) -> list[str]:
    sql = ("SELECT j.step || '.' || j.job_number FROM prodsys.jobs j JOIN prodsys.productions p "  # noqa: S608
           f"USING (production_id) WHERE p.name = '{name}' ORDER BY 1")  # name: a test's own, [a-z0-9]
    rows = psql(sql, stack.database)
    return rows.splitlines()


# --- tests

@pytest.mark.slow  # make test runs a production's four steps in the e2e story (e2e/test_production.py)
def test_submit_then_each_registered_file_makes_its_next_step_job(grid: Grid, stack: Stack, tmp_path: Path) -> None:
    path, data = steering(tmp_path, final_rules="at_start")  # the rules come with the empty final dataset
    name = data["name"]
    container = f"mc.ITprod.{name}"
    out = stack.prod("submit", str(path)).stdout
    assert f"{name} submitted: 3 detsim jobs" in out, out

    report = stack.status(name)
    detsim = _steps(report)["detsim"]
    jobs = _jobs(stack, detsim["task_id"])
    assert sorted(j["key"] for j in jobs) == ["detsim.000001", "detsim.000002", "detsim.000003"]
    one = stack.wms.job(jobs[0]["job_id"])
    assert one["transformation"] == "detsim"
    assert "--seed" in one["args"]
    assert one["outputs"][0]["dataset"] == f"mc:{container}.detsim"
    assert _steps(report)["elecsim"]["task_id"] is None  # no input yet, no job yet

    # Rucio: the container holds the step datasets; the final dataset has the policy's rules
    content = rucio_py(grid, f"out = sorted(d['name'] for d in c.list_content('mc', {container!r}))")
    assert content == [f"{container}.detsim", f"{container}.elecsim"]
    logs = rucio_py(grid, f"out = c.get_did('mc', {container + '.elecsim.log'!r})['type']")
    assert logs == "DATASET"
    rules = rucio_py(grid, f"out = sorted((r['rse_expression'], r['account'], r['expires_at'] is not None) "
                     f"for r in c.list_did_rules('mc', {container + '.elecsim'!r}))")
    assert rules == [["CNAF_DISK", "production", True], ["IHEP_DISK", "production", True]]
    assert len(report["final_rules"]) == 2

    # the same steering again: nothing new
    again = stack.prod("submit", str(path)).stdout
    assert "already submitted" in again
    assert len(_jobs(stack, detsim["task_id"])) == 3

    # a detsim output registered in Rucio -> its elecsim job, with the file as input
    size = upload(grid, tmp_path, f"{container}.detsim.000002.root", f"{container}.detsim")
    stack.prod("run", "--run-once")
    report = stack.status(name)
    elecsim = _steps(report)["elecsim"]
    jobs = _jobs(stack, elecsim["task_id"])
    assert [j["key"] for j in jobs] == ["elecsim.000002"]
    job = stack.wms.job(jobs[0]["job_id"])
    assert job["inputs"] == [f"mc:{container}.detsim.000002.root"]
    assert job["args"][:2] == ["--input", f"{container}.detsim.000002.root"]
    assert (_steps(report)["detsim"]["files"], _steps(report)["detsim"]["bytes"]) == (1, size)

    # a restart replays: nothing twice
    stack.prod("run", "--run-once")
    assert [j["key"] for j in _jobs(stack, elecsim["task_id"])] == ["elecsim.000002"]

    # two instances at once, with a new file: one job for it
    upload(grid, tmp_path, f"{container}.detsim.000003.root", f"{container}.detsim")
    runs = [stack.prod_async("run", "--run-once") for _ in range(2)]
    for proc in runs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert sorted(j["key"] for j in _jobs(stack, elecsim["task_id"])) == ["elecsim.000002", "elecsim.000003"]
    assert _prodsys_jobs(stack, name) == ["detsim.1", "detsim.2", "detsim.3", "elecsim.2", "elecsim.3"]

    # paused: files wait; resumed: their jobs come
    stack.prod("pause", name)
    upload(grid, tmp_path, f"{container}.detsim.000001.root", f"{container}.detsim")
    stack.prod("run", "--run-once")
    assert len(_jobs(stack, elecsim["task_id"])) == 2
    stack.prod("resume", name)
    stack.prod("run", "--run-once")
    assert len(_jobs(stack, elecsim["task_id"])) == 3

    # extend: more detsim jobs at once
    assert "5 jobs" in stack.prod("extend", name, "--jobs", "2").stdout
    assert len(_jobs(stack, detsim["task_id"])) == 5

    # kill: every job of both tasks cancelled, no more jobs
    stack.prod("kill", name)
    states = {j["state"] for t in (detsim["task_id"], elecsim["task_id"]) for j in _jobs(stack, t)}
    assert states == {"cancelled"}
    assert stack.status(name)["state"] == "killed"
    text = stack.prod("status", name).stdout
    assert "cancelled 5" in text, text


def test_a_finished_production_closes_its_datasets_and_reports_failures(grid: Grid, stack: Stack,
                                                                         tmp_path: Path) -> None:
    path, data = steering(tmp_path, jobs=2, max_attempts=1)
    name = data["name"]
    container = f"mc.ITprod.{name}"
    stack.prod("submit", str(path))
    assert stack.status(name)["final_rules"] == []  # at_close, the default: not before the final step closes
    # the intermediate and log datasets have the policy's rules from the start (production.yaml's lifetimes)
    for dataset, days in ((f"{container}.detsim", 180), (f"{container}.detsim.log", 90),
                          (f"{container}.elecsim.log", 90)):
        rules = rucio_py(grid, f"out = [(r['rse_expression'], r['account'], round((r['expires_at'] - "
                               f"r['created_at']).total_seconds() / 86400)) for r in c.list_did_rules('mc', "
                               f"{dataset!r})]")
        assert rules == [["IHEP_DISK", "production", days]], (dataset, rules)
    detsim_task = _steps(stack.status(name))["detsim"]["task_id"]
    # job 1 finishes (its file registered as a pilot would), job 2 fails for good
    upload(grid, tmp_path, f"{container}.detsim.000001.root", f"{container}.detsim")
    stack.agent_once()
    from juno_dcs.wms.models import FinishReport

    wms, pilot = stack.wms, pilot_client(stack.dispatcher_url, grid.home)
    by_key = {j["key"]: j for j in wms.jobs(task_id=detsim_task)}
    for key, finish in (("detsim.000001", FinishReport(state="finished", exit_code=0)),
                        ("detsim.000002", FinishReport(state="failed", exit_code=3, error_code=1305,
                                                       error_diag="detsim: geometry file missing"))):
        job = wms.job(by_key[key]["job_id"])
        assert job["state"] == "activated", job
        got = pilot.get_job("it-pilot", job["site"], job["site"], 1, 100_000, 100_000)
        assert got is not None
        pilot.heartbeat(got.job_id, "it-pilot", "running")
        pilot.finish(got.job_id, "it-pilot", finish)
    assert {j["key"]: j["state"] for j in wms.jobs(task_id=detsim_task)} == {
        "detsim.000001": "finished", "detsim.000002": "failed"}

    stack.prod("run", "--run-once")  # elecsim 1 is made; detsim is over: its datasets are closed
    report = stack.status(name)
    steps = _steps(report)
    assert steps["detsim"]["closed"] is True
    assert steps["detsim"]["failures"][0]["error_diag"] == "detsim: geometry file missing"
    assert steps["detsim"]["failures"][0]["error_code"] == 1305
    assert rucio_py(grid, f"out = c.get_did('mc', {container + '.detsim'!r})['open']") is False
    assert steps["elecsim"]["closed"] is False
    failed_id = by_key["detsim.000002"]["job_id"]
    assert [(e["error_class"], e["count"], e["example"]["job_id"]) for e in steps["detsim"]["errors"]] == [
        ("service", 1, failed_id)]  # exit 3: transient, but max_attempts 1
    assert (f"    failed     1 x service: detsim: geometry file missing [e.g. job {failed_id} detsim.000002 attempt 1 "
            "at ") in stack.prod("status", name).stdout

    elecsim = wms.jobs(task_id=steps["elecsim"]["task_id"])
    assert [j["key"] for j in elecsim] == ["elecsim.000001"]
    wms.kill_job(elecsim[0]["job_id"])
    stack.prod("run", "--run-once")
    report = stack.status(name)
    assert report["state"] == "done"
    assert all(s["closed"] for s in report["steps"])
    assert len(report["final_rules"]) == 2  # put once the final dataset was complete
    final = container + ".elecsim"
    rules = rucio_py(grid, f"out = sorted(r['rse_expression'] for r in c.list_did_rules('mc', {final!r}))")
    assert rules == ["CNAF_DISK", "IHEP_DISK"]
    assert rucio_py(grid, f"out = c.get_did('mc', {container + '.elecsim.log'!r})['open']") is False
    refused = stack.prod("extend", name, "--jobs", "1", check=False)
    assert refused.returncode == 1
    assert "is done" in refused.stderr


def events_daemon(grid: Grid, stack: Stack, tmp_path: Path, reconcile: float) -> tuple[subprocess.Popen[str], Path]:
    """`juno-prod run` of the stack, woken by the grid's Rucio events (the broker's read-only account `events`),
    with a full pass every `reconcile` seconds; its log file."""
    from juno_dcs.grid.home import GridHome

    state = GridHome(grid.home).load_state()
    config = yaml.safe_load(stack.config.read_text())
    config["events"] = {"url": state.ports.url("activemq_stomp", "stomp"), "username": "events",
                        "password_file": str(grid.home / "secrets" / "activemq-events")}
    config["reconcile"] = reconcile
    path = tmp_path / f"prod-events-{reconcile:.0f}.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / f"prod-events-{reconcile:.0f}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN / "juno-prod"), "-v", "--config", str(path), "run"], stdout=out,
                                stderr=subprocess.STDOUT, text=True, env=stack.env)
    return proc, log


def stop_daemon(proc: subprocess.Popen[str], log: Path) -> str:
    proc.terminate()
    proc.wait(timeout=60)
    return log.read_text()


def wait_for_job(stack: Stack, name: str, key: str, timeout: float) -> float:
    """Seconds until the production's step job `key` exists (AssertionError after `timeout`)."""
    start = time.monotonic()
    step = key.split(".")[0]
    while time.monotonic() - start < timeout:
        task_id = _steps(stack.status(name))[step]["task_id"]
        if task_id is not None and key in {j["key"] for j in _jobs(stack, task_id)}:
            return time.monotonic() - start
        time.sleep(1)
    raise AssertionError(f"{name}: no job {key} after {timeout:.0f} s")


@pytest.mark.slow  # a stopped hermes and the reconcile that covers it: a long wait, in make test-all
@pytest.mark.timeout(400)
def test_rucio_events_wake_the_daemon_and_a_reconcile_covers_a_stopped_hermes(grid: Grid, stack: Stack,
                                                                              tmp_path: Path) -> None:
    """A detsim file at the rule's RSE -> RULE_OK (Rucio's judge) -> hermes -> the broker -> the daemon, which
    makes its elecsim job long before its next full pass; with hermes stopped, the full pass makes it."""
    path, data = steering(tmp_path)
    name = data["name"]
    container = f"mc.ITprod.{name}"
    stack.prod("submit", str(path))
    notify = rucio_py(grid, f"out = [r['notification'] for r in c.list_did_rules('mc', {container + '.detsim'!r})]")
    assert notify == ["YES"]  # the intermediate dataset's rule announces each new file at IHEP_DISK

    proc, log = events_daemon(grid, stack, tmp_path, reconcile=600)
    try:
        time.sleep(3)  # its first (full) pass and the subscription
        upload(grid, tmp_path, f"{container}.detsim.000001.root", f"{container}.detsim")
        waited = wait_for_job(stack, name, "elecsim.000001", timeout=120)
    finally:
        text = stop_daemon(proc, log)
    assert "listening to /topic/rucio.events" in text, text[-2000:]
    assert f"woken by events of mc:{container}.detsim" in text, text[-2000:]
    assert waited < 120  # the next full pass would have come after 600 s
    print(f"elecsim job made {waited:.1f} s after the detsim file's upload, by Rucio's event")

    with grid.stopped("rucio-hermes"):
        proc, log = events_daemon(grid, stack, tmp_path, reconcile=6)
        try:
            time.sleep(3)
            upload(grid, tmp_path, f"{container}.detsim.000002.root", f"{container}.detsim")
            waited = wait_for_job(stack, name, "elecsim.000002", timeout=90)
        finally:
            text = stop_daemon(proc, log)
    assert "woken by" not in text, text[-2000:]
    assert "0 on events (0 events received)" in text, text[-2000:]
    assert waited <= 6 + 30  # the reconcile interval, and the pass itself
    print(f"with hermes stopped, elecsim job made {waited:.1f} s after the upload, by the reconcile pass")


def test_bad_input_is_refused_with_its_reason(stack: Stack, tmp_path: Path) -> None:
    path, _ = steering(tmp_path, output_storage="IHEP_TAPE")
    proc = stack.prod("submit", str(path), check=False)
    assert proc.returncode == 2  # bad input
    assert "output_storage: 'IHEP_TAPE' is a TAPE RSE" in proc.stderr
    path, data = steering(tmp_path, jobs="many")
    proc = stack.prod("submit", str(path), check=False)
    assert proc.returncode == 2
    assert f"{path}: jobs: " in proc.stderr
    path, data = steering(tmp_path)
    stack.prod("submit", str(path))
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({**data, "events_per_job": 7}))
    proc = stack.prod("submit", str(changed), check=False)
    assert proc.returncode == 1  # a conflict with the stored production
    assert "exists" in proc.stderr
    assert "no production 'nope'" in stack.prod("status", "nope", check=False).stderr
