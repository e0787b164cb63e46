"""Pilots against a real dispatcher (`juno-wms serve` and `juno-wms agent` on a throwaway PostgreSQL database) and
the test session's grid's Rucio: a detsim -> elecsim chain, a job over its memory (1235, retried with more memory), a
SIGKILLed pilot whose job comes back after its lease, and the factory starting pilots for activated jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
import yaml

from juno_dcs.wms.client import WmsClient
from juno_dcs.wms.models import JobSpec, LogSpec, OutputSpec
from tests.conftest import Grid
from tests.integration.pilot_helpers import (
    BIN,
    campaign,
    check_grid,
    clients,
    mc_dataset,
    mc_file,
    mc_log,
    pilot_env,
    rucio_client,
    run_pilot,
    start_pilot,
    wait_job,
)
from tests.integration.wms_helpers import Server, client_auth, grid_auth, throwaway_database, user_client, write_config

LEASE_S = 8


@pytest.fixture(scope="module")
def wms(grid: Grid, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WmsClient]:
    check_grid(grid)
    directory = tmp_path_factory.mktemp("wms")
    with throwaway_database("pilot_test") as url:
        config = write_config(directory, url, lease_s=LEASE_S, agent_sleep_s=1, auth=grid_auth(grid.home))
        with Server(config) as server, (directory / "agent.log").open("ab") as log:
            agent = subprocess.Popen([str(BIN / "juno-wms"), "agent", "--config", str(config), "--sleep-time", "1"],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                yield user_client(server.url, grid.home, "root")  # reads everyone's jobs (admin)
            finally:
                agent.terminate()
                agent.wait(timeout=30)


def as_owner(wms: WmsClient, grid: Grid, account: str) -> WmsClient:
    """The dispatcher with `account`'s own token: a task's owner is its submitter."""
    return user_client(wms.url, grid.home, account)


def activated(job: dict[str, object]) -> bool:
    return job["state"] == "activated"


def test_detsim_elecsim_chain(wms: WmsClient, grid: Grid, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    camp = campaign()
    detsim, elecsim = mc_file(camp, "detsim", 1), mc_file(camp, "elecsim", 1)
    jobs = [
        JobSpec(key="detsim-1", transformation="detsim", priority=10, site="CNAF", memory_mb=200, walltime_s=600,
                args=["--evtmax", "5", "--seed", "1", "--output", detsim, "gun", "--particles", "e-", "--momentums",
                      "2"],
                outputs=[OutputSpec(scope="mc", name=detsim, dataset=mc_dataset(camp, "detsim"))],
                log=LogSpec(scope="mc", name=mc_log(camp, "detsim", 1),
                            dataset=mc_dataset(camp, "detsim", log=True))),
        JobSpec(key="elecsim-1", transformation="elecsim", site="CNAF", memory_mb=200, walltime_s=600,
                inputs=[f"mc:{detsim}"],
                args=["--input", detsim, "--output", elecsim, "--seed", "1"],
                outputs=[OutputSpec(scope="mc", name=elecsim, dataset=mc_dataset(camp, "elecsim"))],
                log=LogSpec(scope="mc", name=mc_log(camp, "elecsim", 1),
                            dataset=mc_dataset(camp, "elecsim", log=True))),
    ]
    _, ids = as_owner(wms, grid, "production").submit_task(f"{camp}-chain", "production", "production", jobs)
    for job_id in ids:
        wait_job(wms, job_id, activated, what="activated")
    log = tmp_path / "pilot.log"
    # no --run-once: it runs both jobs, then getJob answers no work and it exits 0
    assert run_pilot(wms, grid, "CNAF", tmp_path / "work", log) == 0, log.read_text()[-3000:]
    text = log.read_text()
    for job_id in ids:
        job = wms.job(job_id)
        assert job["state"] == "finished", (job, text[-3000:])
        assert job["resources"]["wall_s"] > 0
    assert "stage-in mc:" + detsim + " from CNAF_DISK" in text
    assert "no work for CNAF; exiting after 2 jobs" in text
    assert list((tmp_path / "work").iterdir()) == [], "job directories are removed"
    monkeypatch.setenv("RUCIO_CONFIG", str(clients(grid) / "production.cfg"))
    client = rucio_client(grid)
    for step, name in (("detsim", detsim), ("elecsim", elecsim)):
        content = sorted(d["name"] for d in client.list_content("mc", mc_dataset(camp, step).split(":")[1]))
        assert content == [name]
        logs = [d["name"] for d in client.list_content("mc", mc_dataset(camp, step, log=True).split(":")[1])]
        assert logs == [mc_log(camp, step, 1)]
    outputs = wms.job(ids[1])["output_files"]
    assert [(o["name"], o["rse"]) for o in outputs] == [(elecsim, "CNAF_DISK")]


HOG = ("import os, time; mb = int(os.environ['JUNO_MEMORY_LIMIT_MB']) + 100 if os.environ['JUNO_ATTEMPT'] == '1' "
       "else 20; b = bytearray(mb * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); time.sleep(1)")


def test_memory_exceeded_then_more_memory(wms: WmsClient, grid: Grid, tmp_path: Path) -> None:
    """260 MB fits the 300 MB queues (CNAF first); the payload goes over, 1235, and the retry with 520 MB is
    re-brokered to JINR (1600 MB), where it runs."""
    spec = JobSpec(key="hog", transformation="exec", memory_mb=260, walltime_s=600, args=[sys.executable, "-c", HOG])
    _, (job_id,) = as_owner(wms, grid, "alice").submit_task(f"{campaign()}-hog", "user", "alice", [spec])
    first = wait_job(wms, job_id, activated, what="activated")
    log = tmp_path / "pilot.log"
    assert run_pilot(wms, grid, first["queue"], tmp_path / "w1", log, "--run-once") == 0
    second = wait_job(wms, job_id, lambda j: j["attempt"] == 2 and j["state"] == "activated", what="requeued")
    assert second["memory_mb"] == 520
    assert second["queue"] == "JINR"
    history = wms.job(job_id)["history"]
    assert any("1235" in (h.get("reason") or "") for h in history), history
    assert "more than the limit" in log.read_text()
    assert run_pilot(wms, grid, "JINR", tmp_path / "w2", log, "--run-once") == 0
    assert wms.job(job_id)["state"] == "finished", log.read_text()[-3000:]


SLEEPY = "import os, time; time.sleep(300 if os.environ['JUNO_ATTEMPT'] == '1' else 0)"


@pytest.mark.slow  # a pilot killed, its job's lease left to run out
def test_sigkilled_pilot_job_comes_back(wms: WmsClient, grid: Grid, tmp_path: Path) -> None:
    spec = JobSpec(key="sleepy", transformation="exec", memory_mb=100, walltime_s=600, site="CNAF",
                   args=[sys.executable, "-c", SLEEPY])
    _, (job_id,) = as_owner(wms, grid, "bob").submit_task(f"{campaign()}-sleepy", "user", "bob", [spec])
    wait_job(wms, job_id, activated, what="activated")
    log = tmp_path / "pilot.log"
    pilot = start_pilot(wms, grid, "CNAF", tmp_path / "w1", log, "--run-once")
    wait_job(wms, job_id, lambda j: j["state"] == "running", what="running")
    payload_groups = {os.getpgid(c.pid) for c in psutil.Process(pilot.pid).children(recursive=True)}
    pilot.send_signal(signal.SIGKILL)
    pilot.wait()
    for group in payload_groups:  # what a batch system does with the slot of a killed pilot
        os.killpg(group, signal.SIGKILL)
    back = wait_job(wms, job_id, lambda j: j["attempt"] == 2 and j["state"] == "activated", timeout=LEASE_S * 6,
                    what="requeued after its lease")
    assert any("1201" in (h.get("reason") or "") for h in back["history"]), back["history"]
    assert run_pilot(wms, grid, "CNAF", tmp_path / "w2", log, "--run-once") == 0
    assert wms.job(job_id)["state"] == "finished", log.read_text()[-3000:]


def test_sigterm_fails_the_job_cleanly(wms: WmsClient, grid: Grid, tmp_path: Path) -> None:
    spec = JobSpec(key="sleepy", transformation="exec", memory_mb=100, walltime_s=600, site="CNAF", max_attempts=1,
                   args=[sys.executable, "-c", SLEEPY])
    _, (job_id,) = as_owner(wms, grid, "bob").submit_task(f"{campaign()}-term", "user", "bob", [spec])
    wait_job(wms, job_id, activated, what="activated")
    log = tmp_path / "pilot.log"
    pilot = start_pilot(wms, grid, "CNAF", tmp_path / "w1", log)
    wait_job(wms, job_id, lambda j: j["state"] == "running", what="running")
    pilot.terminate()
    assert pilot.wait(timeout=60) == 0
    job = wms.job(job_id)
    assert (job["state"], job["error_code"]) == ("failed", 1201), job
    assert "SIGTERM" in job["error_diag"]


def test_factory_starts_pilots_for_activated_jobs(wms: WmsClient, grid: Grid, tmp_path: Path) -> None:
    specs = [JobSpec(key=f"quick-{i}", transformation="exec", memory_mb=100, walltime_s=600, site="MSU",
                     args=[sys.executable, "-c", "print('hello')"]) for i in range(3)]
    _, ids = as_owner(wms, grid, "alice").submit_task(f"{campaign()}-factory", "user", "alice", specs)
    for job_id in ids:
        wait_job(wms, job_id, activated, what="activated")
    services = grid.status()["services"]
    assert isinstance(services, dict)
    config = tmp_path / "factory.yaml"
    config.write_text(yaml.safe_dump({
        "dispatcher_url": wms.url, "rucio_configs": str(clients(grid)), "work_root": str(tmp_path / "pilots"),
        "pilot_lifetime_s": 3600, "only_listed_queues": True, "queues": {"MSU": {"max_pilots": 2}},
        "conditions_urls": {"MSU": [services["squid-MSU"], services["conditions"]]},
        "auth": client_auth(grid.home, "pilot").model_dump(mode="json")}))  # the pilots' client, as the grid's
    once = subprocess.run([str(BIN / "juno-pilot"), "factory", "--config", str(config), "--run-once"],
                          env=pilot_env(), capture_output=True, text=True, timeout=60, check=False)
    assert once.returncode == 0, once.stderr
    assert "starting 2" in once.stderr
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(wms.job(i)["state"] != "finished" for i in ids):
        time.sleep(1)
    assert [wms.job(i)["state"] for i in ids] == ["finished"] * 3
    pilots = sorted((tmp_path / "pilots" / "logs").glob("*.log"))
    assert len(pilots) == 2
