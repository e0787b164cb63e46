"""The "tokens off" side of the token benchmarks' on/off pairs, beside a running grid.

Two more XRootD SEs, BENCHOPEN_SRC and BENCHOPEN_DST, started with the grid's own configuration minus its three
authorization lines (no SciTokens plugin: every request is served), and a second transfer-service REST API on the
grid's database with `auth: null` (no token asked for or checked). Both RSEs go into the grid's Rucio with the
attributes of the grid's disks but without `oidc_support` and with `fts` pointing at that API, in a site of their
own (`BENCH`) so that no placement expression of the share policy can choose them. Rucio then orders their
transfers without tokens, the API takes the jobs without checking one, and the grid's own transfer workers copy
them without one: everything else (Rucio's server and daemons, the workers, PostgreSQL) is shared with the "on"
side, so the two sides of a pair differ only by the token work.

Nothing here is a way to run a grid: the open SEs and the open API listen on 127.0.0.1 only and stop with the
benchmark. Used by benchmarks/transfers.py (rules) and benchmarks/ingest.py (the check at the SE).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from rucio.common.exception import Duplicate

from juno_dcs.grid import pki, storage
from juno_dcs.grid.home import GridHome
from juno_dcs.grid.launcher import root_client
from juno_dcs.grid.programs import FTS_SERVER_WORKERS
from juno_dcs.settings import GridSettings

SOURCE, DESTINATION = "BENCHOPEN_SRC", "BENCHOPEN_DST"
AUTH_LINES = ("ofs.authorize", "ofs.authlib", "http.header2cgi")
LIMIT_BYTES = 10**15
ACCOUNTS = ("root", "rawdata")  # who may place rules and replicas there


@dataclass
class OpenSide:
    ports: dict[str, int]
    fts_url: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def base(self, rse: str, scheme: str = "root") -> str:
        return f"{scheme}://localhost:{self.ports[rse]}/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before it listened on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not listen on {port} within {timeout:.0f} s")


def open_xrootd_config(grid: GridHome, settings: GridSettings, rse: str, port: int) -> str:
    """The grid's XRootD configuration for `rse` without its authorization lines."""
    lines = storage.render_xrootd(grid, settings, rse, port).splitlines()
    kept = [line for line in lines if not line.startswith(AUTH_LINES)]
    if len(lines) - len(kept) != len(AUTH_LINES):
        raise SystemExit(f"the grid's xrootd.cfg no longer has the lines {AUTH_LINES}: update benchmarks/open_side.py")
    return "\n".join(["# benchmarks/open_side.py: an SE that checks nothing, for the token benchmarks' off side",
                      *kept]) + "\n"


def _start_xrootd(grid: GridHome, settings: GridSettings, rse: str, workdir: Path) -> tuple[int, Any]:
    uid, gid = storage._xrootd_ids()
    data = grid.rse_dir(rse)
    data.mkdir(parents=True, exist_ok=True)
    os.chown(data, uid, gid)
    port = free_port()
    cfg = workdir / f"{rse}.cfg"
    cfg.write_text(open_xrootd_config(grid, settings, rse, port))
    admin = storage.admin_dir(grid)
    env = {**os.environ, "LD_PRELOAD": str(settings.bind_shim), "XDG_CACHE_HOME": str(admin)}
    with (workdir / f"{rse}.log").open("wb") as log:
        proc = subprocess.Popen([str(storage.XROOTD_BIN), "-R", storage.XROOTD_USER, "-I", "v4", "-n", rse, "-c",
                                 str(cfg)], cwd=admin, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, proc, f"the open XRootD of {rse}")
    return port, proc


def _start_open_api(grid: GridHome, settings: GridSettings, workdir: Path) -> tuple[str, Any]:
    config = yaml.safe_load((grid.etc / "transfer.yaml").read_text())
    config["auth"] = None
    config["exchange"] = None
    cfg = workdir / "transfer-open.yaml"
    cfg.touch(mode=0o600)  # it holds the database password, as the grid's own does
    cfg.write_text(yaml.safe_dump(config))
    port = free_port()
    env = {**os.environ, "X509_CERT_DIR": str(pki.cert_dir(settings.pki_dir))}
    juno_fts = Path(sys.executable).parent / "juno-fts"
    with (workdir / "fts-open.log").open("wb") as log:
        proc = subprocess.Popen([str(juno_fts), "serve", "--config", str(cfg), "--port", str(port), "--workers",
                                 str(FTS_SERVER_WORKERS)], env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, proc, "the open transfer API")
    url = f"https://localhost:{port}"
    requests.get(url + "/whoami", timeout=30, verify=str(grid.trust_dir / "ca.pem")).raise_for_status()
    return url, proc


def _register(grid: GridHome, settings: GridSettings, ports: dict[str, int], fts_url: str, like: str) -> None:
    client = root_client(grid, grid.load_state())
    have = {r["rse"] for r in client.list_rses()}
    attributes = {k: v for k, v in client.list_rse_attributes(like).items() if k not in ("oidc_support", like)}
    attributes |= {"site": "BENCH", "fts": fts_url, "oidc_support": False}
    for rse, port in ports.items():
        if rse not in have:
            client.add_rse(rse, deterministic=True)
        for key, value in attributes.items():
            client.add_rse_attribute(rse, key, value)
        for scheme in {p["scheme"] for p in client.get_protocols(rse)} if rse in have else ():
            client.delete_protocols(rse, scheme)
        for protocol in storage.protocols(grid, settings, rse, port):
            client.add_protocol(rse, protocol)
        for account in ACCOUNTS:
            client.set_local_account_limit(account, rse, LIMIT_BYTES)
    for src, dst in ((SOURCE, DESTINATION), (DESTINATION, SOURCE)):
        try:
            client.add_distance(src, dst, {"distance": 1})
        except Duplicate:  # from an earlier run on this grid
            client.update_distance(src, dst, {"distance": 1})


@contextmanager
def open_side(home: Path, like: str = "IHEP_DISK") -> Iterator[OpenSide]:
    """Start the open SEs and API beside the grid in `home`, register them in its Rucio; stop them at the end."""
    grid = GridHome(home)
    settings = GridSettings(home=home)
    workdir = Path(tempfile.mkdtemp(prefix="juno-bench-open-"))
    workdir.chmod(0o755)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ports: dict[str, int] = {}
        for rse in (SOURCE, DESTINATION):
            ports[rse], proc = _start_xrootd(grid, settings, rse, workdir)
            procs.append(proc)
        fts_url, proc = _start_open_api(grid, settings, workdir)
        procs.append(proc)
        _register(grid, settings, ports, fts_url, like)
        yield OpenSide(ports, fts_url, procs)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if os.environ.get("JUNO_BENCH_KEEP") is None:
            shutil.rmtree(workdir, ignore_errors=True)


def alternate(runs: int) -> Iterator[tuple[int, str]]:
    """(run, "on"|"off") run by run, the order swapped each run so that neither side always goes first."""
    for i in range(runs):
        for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
            yield i, mode


def pair_figures(rate: str, cost: str, samples: dict[str, list[float]]) -> dict[str, Any]:
    """The medians of both sides (`<rate>_tokens_on`/`_off`), what tokens cost (`<cost>` = 1 - on/off of the
    medians, `<cost>_pairs` = the median of the runs' own 1 - on/off) and the samples."""
    on, off = statistics.median(samples["on"]), statistics.median(samples["off"])
    pairs = [1 - a / b for a, b in zip(samples["on"], samples["off"], strict=True)]
    return {f"{rate}_tokens_on": round(on, 1), f"{rate}_tokens_off": round(off, 1), cost: round(1 - on / off, 3),
            f"{cost}_pairs": round(statistics.median(pairs), 3),
            f"{rate}_samples": {k: [round(x, 1) for x in v] for k, v in samples.items()}}

