"""Benchmark: transfers through the grid's transfer service.

1. One 1 GiB file IHEP_DISK -> CNAF_DISK, through the service (submit to FINISHED, pull, no checksum) and
   by a bare `curl -X COPY` pull between the same two XRootD servers, alternated, N runs each:
   `tpc_ratio` = median service throughput / median bare throughput (aim: >= 0.8). The same through the
   service with adler32 checked on both sides is reported too.
2. 1,000 files of 1 MB registered at IHEP_DISK in one dataset, one Rucio rule to CNAF_DISK: files per second
   from rule creation to rule OK (`rule_files_per_s`, aim: >= 50) and the rule's latency (`rule_latency_s`).
3. What tokens cost rules: rules of `--pair-files` files with tokens (IHEP_DISK -> CNAF_DISK) and without them
   (two SEs and a transfer API that check nothing, RSEs without `oidc_support`: benchmarks/open_side.py), run by
   run alternately: `rule_files_per_s_tokens_on`/`_off` (medians), `rule_token_cost` = 1 - on/off (aim: <= 0.10).

Starts its own grid under a temporary home (or uses --home of a running one) and prints one JSON object.

    .venv/bin/python benchmarks/transfers.py [--runs 5] [--files 1000] [--home DIR] [--only tpc|rule|tokens]
                                             [--pair-files 300] [--pair-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import stamp
from tests.conftest import JUNO_DCS, free_base_port

from juno_dcs.grid.home import GridHome

CHECKOUT = Path(__file__).resolve().parents[1]
CA_DIR = CHECKOUT / "var" / "pki" / "certificates"
GIB = 1024**3


def status(home: Path) -> dict[str, Any]:
    proc = subprocess.run([JUNO_DCS, "status", "--json", "--home", str(home)], capture_output=True, text=True,
                          check=False)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def write_owned(path: Path, size: int, random: bool) -> bytes | None:
    """A file in an RSE's storage, owned by the xrootd user; returns its bytes when small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = None
    with path.open("wb") as handle:
        if random:
            chunk = os.urandom(16 * 1024 * 1024)
            for _ in range(size // len(chunk)):
                handle.write(chunk)
        else:
            data = os.urandom(size)
            handle.write(data)
    shutil.chown(path, "xrootd", "xrootd")
    for parent in path.parents:
        if parent.name == "rses":
            break
        shutil.chown(parent, "xrootd", "xrootd")
    return data


def fts_headers(home: Path) -> dict[str, str]:
    """root's token for the transfer service (its audience, scope `fts`), as Rucio's conveyor gets one."""
    from juno_dcs.grid.launcher import account_token

    grid = GridHome(home)
    return {"Authorization": f"Bearer {account_token(grid, grid.load_state(), 'root', '127.0.0.1', 'fts').value}"}


def storage_tokens(home: Path) -> tuple[str, str]:
    """(source, destination) tokens for a bare copy under /bench, from Rucio's own client as its conveyor gets
    them: the curl COPY carries them the way the transfer service does (TransferHeaderAuthorization)."""
    from juno_dcs.grid import issuer
    from juno_dcs.tokens.fetch import TokenSource
    from juno_dcs.tokens.storage import STORAGE_AUDIENCE, read_scope, write_scope

    grid = GridHome(home)
    state = grid.load_state()
    source = TokenSource(issuer.credentials(issuer.layout(grid, state), state, "rucio"))
    return (source.get(STORAGE_AUDIENCE, read_scope("/bench")).value,
            source.get(STORAGE_AUDIENCE, write_scope("/bench")).value)


def wait_job(fts: str, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    while True:
        job = requests.get(f"{fts}/jobs/{job_id}", timeout=30, headers=headers, verify=str(CA_DIR / "ca.pem")).json()
        if job["job_state"] in ("FINISHED", "FAILED", "FINISHEDDIRTY", "CANCELED"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.05)


def tpc(home: Path, st: dict[str, Any], runs: int) -> dict[str, Any]:
    src_port = st["storage"]["IHEP_DISK"].rsplit(":", 1)[1].strip("/")
    dst_port = st["storage"]["CNAF_DISK"].rsplit(":", 1)[1].strip("/")
    name = f"bench-{uuid.uuid4().hex[:8]}"
    source_file = GridHome(home).rse_dir("IHEP_DISK") / "bench" / name
    write_owned(source_file, GIB, random=True)
    subprocess.run(["cat", str(source_file)], stdout=subprocess.DEVNULL, check=True)  # both read it from cache
    landing = GridHome(home).rse_dir("CNAF_DISK") / "bench"  # curl COPY makes no parent directories
    landing.mkdir(exist_ok=True)
    shutil.chown(landing, "xrootd", "xrootd")
    fts = st["services"]["fts"]
    src = f"davs://localhost:{src_port}/bench/{name}"
    https_src = src.replace("davs", "https", 1)
    samples: dict[str, list[float]] = {"service": [], "service_checksum": [], "bare": []}
    src_token, dst_token = storage_tokens(home)
    handle, headers_file = tempfile.mkstemp(suffix=".headers")  # 0600: curl reads the tokens from it, so that
    token_headers = Path(headers_file)  # none is on a command line
    with os.fdopen(handle, "w") as out:
        out.write(f"Authorization: Bearer {dst_token}\nTransferHeaderAuthorization: Bearer {src_token}\n")
    for i in range(runs):
        for kind in ("bare", "service", "service_checksum"):
            dst_path = f"/bench/{name}.{kind}.{i}"
            start = time.perf_counter()
            if kind == "bare":
                proc = subprocess.run(
                    ["curl", "-s", "--capath", str(CA_DIR), "-X", "COPY", "-H", f"Source: {https_src}",
                     "-H", f"@{token_headers}", f"https://localhost:{dst_port}{dst_path}"],
                    capture_output=True, text=True, check=True)
                if "success" not in proc.stdout:
                    raise SystemExit(f"curl COPY failed: {proc.stdout}")
            else:
                body = {"files": [{"sources": [src], "destinations": [f"davs://localhost:{dst_port}{dst_path}"],
                                   "source_tokens": [src_token], "destination_tokens": [dst_token]}],
                        "params": {"verify_checksum": "both" if kind == "service_checksum" else "none",
                                   "copy_mode": "pull"}}
                headers = fts_headers(home)
                job_id = requests.post(f"{fts}/jobs", json=body, timeout=30, headers=headers,
                                       verify=str(CA_DIR / "ca.pem")).json()["job_id"]
                job = wait_job(fts, job_id, headers)
                if job["job_state"] != "FINISHED":
                    raise SystemExit(f"service copy failed: {job}")
            elapsed = time.perf_counter() - start
            samples[kind].append(GIB / elapsed / 1e6)
            (GridHome(home).rse_dir("CNAF_DISK") / dst_path.lstrip("/")).unlink()
            os.sync()  # write-back of this copy must not slow the next one down (outside the timed part)
    token_headers.unlink()
    med = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "tpc_ratio": round(med["service"] / med["bare"], 3),
        "tpc_ratio_with_checksum": round(med["service_checksum"] / med["bare"], 3),
        "tpc_mb_s_median": {k: round(v, 1) for k, v in med.items()},
        "tpc_mb_s_samples": {k: [round(x, 1) for x in v] for k, v in samples.items()},
        "tpc_runs": runs,
    }


def rule(home: Path, nfiles: int, src: str = "IHEP_DISK", dst: str = "CNAF_DISK") -> dict[str, Any]:
    os.environ["RUCIO_CONFIG"] = str(home / "etc" / "clients" / "rawdata.cfg")
    from rucio.client import Client
    from rucio.rse import rsemanager

    client = Client()
    stream = f"b{uuid.uuid4().hex[:10]}"  # a JUNO raw block and its files, unique per run
    dataset = f"block.20261125.{stream}"
    from rucio.rse.translation import RSEDeterministicTranslation

    # Rucio registers policy-package algorithms when the first translator is made; before that a protocol
    # asks the server for PFNs in one GET, and 1,000 names are too long for a URL (414)
    RSEDeterministicTranslation()
    rse_settings = rsemanager.get_rse_info(src)
    names = [f"RUN.009999.{stream}.{i:05d}.20261125.rtraw" for i in range(nfiles)]
    pfns = rsemanager.lfns2pfns(rse_settings, [{"scope": "raw", "name": n} for n in names], operation="write",
                                scheme="davs")
    start = time.perf_counter()
    replicas = []
    for n in names:
        pfn = pfns[f"raw:{n}"]
        path = GridHome(home).rse_dir(src) / pfn.split(":", 2)[2].split("/", 1)[1]
        data = write_owned(path, 1_000_000, random=False)
        assert data is not None
        replicas.append({"scope": "raw", "name": n, "bytes": len(data),
                         "adler32": f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"})
    for i in range(0, nfiles, 500):
        client.add_replicas(src, replicas[i:i + 500])
    client.add_dataset("raw", dataset)
    for i in range(0, nfiles, 500):
        client.attach_dids("raw", dataset, [{"scope": "raw", "name": r["name"]} for r in replicas[i:i + 500]])
    prepared = time.perf_counter() - start
    created = time.perf_counter()
    [rule_id] = client.add_replication_rule([{"scope": "raw", "name": dataset}], 1, dst)
    while True:
        info = client.get_replication_rule(rule_id)
        if info["state"] == "OK":
            break
        if info["state"] == "STUCK":
            raise SystemExit(f"rule stuck: {info}")
        time.sleep(0.5)
    latency = time.perf_counter() - created
    return {"rule_files": nfiles, "rule_file_bytes": 1_000_000, "rule_latency_s": round(latency, 1),
            "rule_files_per_s": round(nfiles / latency, 1), "rule_prepare_s": round(prepared, 1)}


def token_pair(home: Path, nfiles: int, runs: int) -> dict[str, Any]:
    """Rules of `nfiles` files with tokens (IHEP_DISK -> CNAF_DISK) and without (benchmarks/open_side.py), run by run
    alternately, the order swapped each run: the medians, what tokens cost (1 - on/off of the medians, and the
    median of the runs' pairs)."""
    from benchmarks.open_side import DESTINATION, SOURCE, alternate, open_side, pair_figures

    samples: dict[str, list[float]] = {"on": [], "off": []}
    with open_side(home):
        for src, dst in ((SOURCE, DESTINATION), ("IHEP_DISK", "CNAF_DISK")):
            rule(home, 20, src, dst)  # uncounted: the first rule of a link warms the caches of its RSEs and tokens
        for _, mode in alternate(runs):
            src, dst = ("IHEP_DISK", "CNAF_DISK") if mode == "on" else (SOURCE, DESTINATION)
            samples[mode].append(rule(home, nfiles, src, dst)["rule_files_per_s"])
    return {**pair_figures("rule_files_per_s", "rule_token_cost", samples), "rule_pair_files": nfiles,
            "rule_pair_runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--home", type=Path, default=None, help="a running grid to use (default: a new one)")
    parser.add_argument("--only", choices=("tpc", "rule", "tokens"), default=None, help="run one of the parts")
    parser.add_argument("--pair-files", type=int, default=300, help="files of each rule of the tokens on/off pair")
    parser.add_argument("--pair-runs", type=int, default=3, help="rules on each side of the tokens on/off pair")
    parser.add_argument("--destination", default="CNAF_DISK", help="the rule's destination RSE (default CNAF_DISK)")
    args = parser.parse_args()
    own = args.home is None
    tmp = Path(tempfile.mkdtemp(prefix="juno-bench-"))
    tmp.chmod(0o755)
    home = args.home or tmp / "grid"
    try:
        if own:
            subprocess.run([JUNO_DCS, "up", "--home", str(home), "--base-port", str(free_base_port())], check=True,
                           capture_output=True)
        st = status(home)
        result: dict[str, Any] = {"benchmark": "transfers", "cpus": os.cpu_count()}
        if args.only in (None, "tpc"):
            result |= tpc(home, st, args.runs)
        if args.only in (None, "rule"):
            result |= rule(home, args.files, dst=args.destination)
        if args.only in (None, "tokens"):
            result |= token_pair(home, args.pair_files, args.pair_runs)
        print(json.dumps(stamp(result), indent=2))
    finally:
        if own:
            subprocess.run([JUNO_DCS, "down", "--purge", "--home", str(home)], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
