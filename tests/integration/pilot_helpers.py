"""Helpers for the pilot's integration tests: the test session's grid (its Rucio as account production), unique
JUNO MC names, and `juno-pilot run` processes for a queue of a dispatcher."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from juno_dcs.pilot.config import token_options
from juno_dcs.wms.client import WmsClient
from juno_dcs.wms.credentials import AUDIENCE
from tests.conftest import Grid
from tests.integration.wms_helpers import client_auth

CHECKOUT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CA_DIR = CHECKOUT / "var" / "pki" / "certificates"


def clients(grid: Grid) -> Path:
    """The directory of the grid's Rucio client configurations, `<account>.cfg`."""
    return grid.home / "etc" / "clients"


def rucio_url(grid: Grid) -> str:
    return f"http://127.0.0.1:{grid.base_port}"


def check_grid(grid: Grid) -> None:
    """The grid's Rucio answers and its client configurations are there (the `grid` fixture started it)."""
    assert (clients(grid) / "production.cfg").is_file(), f"no production.cfg in {clients(grid)}"
    requests.get(f"{rucio_url(grid)}/ping", timeout=5).raise_for_status()


def campaign() -> str:
    """A campaign name of its own for each test (mc.<campaign>.<tag>...)."""
    return "pt" + uuid.uuid4().hex[:10]


def mc_file(camp: str, step: str, job: int, tag: str = "t1") -> str:
    return f"mc.{camp}.{tag}.{step}.{job:06d}.root"


def mc_log(camp: str, step: str, job: int, tag: str = "t1") -> str:
    return f"mc.{camp}.{tag}.{step}.{job:06d}.log.tgz"


def mc_dataset(camp: str, step: str, tag: str = "t1", log: bool = False) -> str:
    return f"mc:mc.{camp}.{tag}.{step}" + (".log" if log else "")


def pilot_env() -> dict[str, str]:
    return {**os.environ, "X509_CERT_DIR": str(CA_DIR), "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}


def rucio_client(grid: Grid, account: str = "production") -> Any:
    """A Rucio client of the grid as `account`, in this process (RUCIO_CONFIG set by the caller's monkeypatch)."""
    from rucio.client import Client
    from rucio.common.config import clean_cached_config

    os.environ["RUCIO_CONFIG"] = str(clients(grid) / f"{account}.cfg")
    clean_cached_config()
    return Client()


def queue_row(client: WmsClient, name: str) -> dict[str, Any]:
    return next(q for q in client.queues() if q["queue"] == name)


def pilot_command(client: WmsClient, grid: Grid, queue: str, workdir: Path, *extra: str, lifetime_s: int = 3600,
                  pilot_id: str | None = None) -> list[str]:
    q = queue_row(client, queue)
    command = [str(BIN / "juno-pilot"), "run", "--dispatcher", client.url, "--site", q["site"], "--queue", queue,
               "--cores", "1", "--memory-mb", str(q["memory_mb_per_core"]), "--walltime-s", str(q["walltime_s"]),
               "--lifetime-s", str(lifetime_s), "--workdir", str(workdir), "--rucio-configs", str(clients(grid)),
               "--monitor-interval", "0.2", *token_options(client_auth(grid.home, "pilot"), AUDIENCE), *extra]
    return command + (["--pilot-id", pilot_id] if pilot_id else [])


def start_pilot(client: WmsClient, grid: Grid, queue: str, workdir: Path, log: Path, *extra: str,
                pilot_id: str | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(pilot_command(client, grid, queue, workdir, *extra, pilot_id=pilot_id),
                                env=pilot_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def run_pilot(client: WmsClient, grid: Grid, queue: str, workdir: Path, log: Path, *extra: str,
              timeout: float = 300) -> int:
    proc = start_pilot(client, grid, queue, workdir, log, *extra)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"pilot did not end in {timeout} s:\n{log.read_text()[-3000:]}") from None


def wait_job(client: WmsClient, job_id: int, until: Callable[[dict[str, Any]], bool], timeout: float = 120,
             what: str = "") -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job = client.job(job_id)
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if until(job):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not {what or 'as expected'} after {timeout} s: state {job['state']}, "
                         f"attempt {job['attempt']}, history {job.get('history')}")
