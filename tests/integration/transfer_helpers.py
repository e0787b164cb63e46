"""Helpers for talking to the grid's storage elements and transfer service in tests."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any

import requests

from tests.conftest import CHECKOUT, Grid

CA = str(CHECKOUT / "var" / "pki" / "certificates" / "ca.pem")
FINAL = {"FINISHED", "FINISHEDDIRTY", "FAILED", "CANCELED"}


def fts_url(grid: Grid) -> str:
    return f"https://127.0.0.1:{grid.base_port + 30}"


def se(grid: Grid, rse: str) -> str:
    """davs://localhost:PORT of an RSE's XRootD."""
    return str(grid.status()["storage"][rse]).rstrip("/")  # type: ignore[index]


def https(url: str) -> str:
    return url.replace("davs://", "https://", 1)


STORAGE_AUDIENCE = "localhost"  # juno_dcs.grid.issuer.STORAGE_AUDIENCE: the SEs take no token without it


def storage_token(grid: Grid, account: str = "root") -> str:
    """`account`'s token for the storage elements (every storage scope of its role)."""
    return grid.token(account, STORAGE_AUDIENCE)


def storage_headers(grid: Grid, account: str = "root") -> dict[str, str]:
    return {"Authorization": f"Bearer {storage_token(grid, account)}"}


def put(grid: Grid, url: str, data: bytes) -> None:
    reply = requests.put(https(url), data=data, verify=CA, timeout=60, headers=storage_headers(grid))
    assert reply.status_code in (200, 201), reply.text


def adler32_of(grid: Grid, url: str) -> str | None:
    reply = requests.head(https(url), headers={"Want-Digest": "adler32", **storage_headers(grid)}, verify=CA,
                          timeout=30)
    if reply.status_code != 200:
        return None
    return reply.headers["Digest"].split("=", 1)[1]


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


FTS_AUDIENCE = "127.0.0.1"  # juno_dcs.grid.issuer.FTS_AUDIENCE


def fts_token(grid: Grid, account: str = "root") -> str:
    """A token for the transfer service (its audience, scope `fts`), as Rucio's conveyor asks for one."""
    return grid.token(account, FTS_AUDIENCE, "fts")


def fts_headers(grid: Grid, account: str = "root") -> dict[str, str]:
    return {"Authorization": f"Bearer {fts_token(grid, account)}"}


def fts_get(grid: Grid, path: str, **kwargs: Any) -> requests.Response:
    """GET a path of the transfer service as root (HTTPS, checked against the grid CA)."""
    return requests.get(f"{fts_url(grid)}{path}", headers=fts_headers(grid), verify=CA, timeout=10, **kwargs)


def submit(grid: Grid, files: list[dict[str, Any]], account: str = "root", **params: Any) -> str:
    """Submit a job as Rucio's conveyor does: each file with a storage token per source and destination
    (root's, unless the file brings its own)."""
    token = storage_token(grid)
    files = [{"source_tokens": [token] * len(f["sources"]), "destination_tokens": [token] * len(f["destinations"]),
              **f} for f in files]
    reply = requests.post(f"{fts_url(grid)}/jobs", json={"files": files, "params": params}, timeout=30,
                          headers=fts_headers(grid, account), verify=CA)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["job_id"])


def job(grid: Grid, job_id: str) -> dict[str, Any]:
    reply = requests.get(f"{fts_url(grid)}/jobs/{job_id}", timeout=30, headers=fts_headers(grid), verify=CA)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def wait_final(grid: Grid, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = job(grid, job_id)
        if current["job_state"] in FINAL:
            return current
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not final after {timeout} s: {job(grid, job_id)}")


def se_log(grid: Grid, rse: str) -> str:
    """The SE's log, its rotated parts first (the supervisor rotates at 20 MB; a busy session gets there)."""
    log = grid.home / "logs" / f"xrootd-{rse}.log"
    parts = [log.with_name(f"{log.name}.{n}") for n in (2, 1)] + [log]
    return "".join(p.read_text(errors="replace") for p in parts if p.exists())


def stored(grid: Grid, rse: str, name: str) -> list[Path]:
    return list(grid.rse_dir(rse).rglob(name))


def supervisorctl(grid: Grid, *args: str) -> str:
    import subprocess
    import sys

    proc = subprocess.run([str(Path(sys.executable).parent / "supervisorctl"), "-c",
                           str(grid.home / "etc" / "supervisord.conf"), *args],
                          capture_output=True, text=True, check=False, timeout=120)
    return proc.stdout + proc.stderr


def rule_until_ok(grid: Grid, did: str, rses: str, account: str = "rawdata", timeout: float = 180) -> str:
    """Add a one-copy rule with the stock CLI and wait until Rucio says it is OK; returns its id."""
    rule_id = grid.rucio("rule", "add", "--copies", "1", "--rses", rses, did,
                         account=account).stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = " ".join(grid.rucio("rule", "show", rule_id, account=account).stdout.split())
        if "State: OK" in shown:
            return rule_id
        time.sleep(2)
    raise AssertionError(f"rule {rule_id} on {did} not OK after {timeout} s: {shown}")
