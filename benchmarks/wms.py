"""Benchmark: the dispatcher (`juno-wms serve`) on PostgreSQL, through its HTTP API.

1. `submit_10k_s`: one task of 10,000 jobs posted to POST /v1/tasks (client-side JSON included) with the
   production account's token, median of N runs.
2. `getjob_per_s`: 50 concurrent pilots (threads, each with its own WmsClient and its own token of the grid's
   pilot client) calling POST /v1/pilot/getjob against `juno-wms serve --workers 2` checking tokens as the grid's
   does, until 10,000 activated jobs are all handed out; jobs per second, median of N runs (aim: >= 1000). Each
   job is checked to be handed out exactly once. `getjob_per_s_tokens_off`: the same against the same server
   with `auth: null` (no token sent or checked), run by run alternately with the first;
   `getjob_token_cost` = 1 - on/off of the medians (aim: <= 0.10), and `getjob_token_cost_pairs`, the median of
   1 - on/off of each run's two halves (each pair ran back to back, under the same load: the better estimate on a
   shared machine). `token_check_us`: the server's work per call for a token it has seen, in this process (the
   bearer header parsed, the SHA-256 looked up in the identity cache, the caller made), in microseconds.
3. `production_200_s`: a production of 200 jobs (`--production-jobs`) detsim -> elecsim -> cal -> rec submitted
   with `juno-prod submit` to a whole grid (its own, or `--home` of a running one): seconds from submission until
   the final rule at CNAF_DISK is OK with a lock for every final file. The grid's pilot factory runs 2 pilots per
   queue; every payload, stage-in and stage-out is real. `--production-jobs 0` skips it.

1 and 2 use a throwaway database on the local PostgreSQL (127.0.0.1:5432, user postgres) and the token issuer of
the grid (`--home`, else the one the script starts). Prints one JSON object.

    .venv/bin/python benchmarks/wms.py [--runs 3] [--jobs 10000] [--pilots 50] [--workers 2]
                                       [--production-jobs 200] [--home GRID]
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
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import stamp
from tests.conftest import BIN, JUNO_DCS, free_base_port
from tests.integration.wms_helpers import (
    Server,
    agent_for,
    client_auth,
    grid_auth,
    throwaway_database,
    truncate,
    write_config,
)

from juno_dcs.wms.client import WmsClient
from juno_dcs.wms.credentials import PILOT_SCOPES, TokenProvider, client_token
from juno_dcs.wms.models import JobSpec


def specs(n: int) -> list[JobSpec]:
    return [JobSpec(key=f"j{i}", transformation="detsim", args=["--evtmax", "10", "--seed", str(i), "gun"],
                    memory_mb=200, site="IHEP") for i in range(n)]


def submit_once(url: str, jobs: list[JobSpec], name: str, token: TokenProvider | None) -> float:
    client = WmsClient(url, timeout=300, token=token)
    if token is not None:
        token()  # the token is got before the clock starts (a client holds one)
    start = time.perf_counter()
    client.submit_task(name, "production", "production", jobs)
    return time.perf_counter() - start


def getjob_once(url: str, n_pilots: int, expected: int, pilot_token: Callable[[], TokenProvider | None]) -> float:
    """`pilot_token()` gives each pilot its own token provider (None: no token)."""
    got: list[list[int]] = [[] for _ in range(n_pilots)]
    errors: list[str] = []
    barrier = threading.Barrier(n_pilots + 1)

    def pilot(i: int) -> None:
        client = WmsClient(url, token=pilot_token())
        client.health()  # connect (and get its token) before the clock starts
        barrier.wait()
        try:
            while (job := client.get_job(f"bench-{i}", "IHEP", "IHEP", 1, 400, 3600)) is not None:
                got[i].append(job.job_id)
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=pilot, args=(i,)) for i in range(n_pilots)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    handed = [j for g in got for j in g]
    if errors or len(handed) != expected or len(set(handed)) != expected:
        raise SystemExit(f"getjob run wrong: {len(handed)} handed out ({len(set(handed))} distinct) of {expected}, "
                         f"errors: {errors[:3]}")
    return expected / took


def grid_env(home: Path, account: str = "root") -> dict[str, str]:
    """The environment `juno-dcs env` gives a person of `account` (the stock rucio CLI, jsub, juno-prod)."""
    exports = subprocess.run([JUNO_DCS, "env", "--home", str(home), "--account", account], check=True,
                             capture_output=True, text=True).stdout
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    for line in exports.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    return env


def production(home: Path, jobs: int, tmp: Path) -> dict[str, Any]:
    """Submission -> the final outputs replicated, for a `jobs`-job production on the grid at `home`."""
    from juno_dcs.grid.home import GridHome
    from juno_dcs.grid.launcher import root_client

    env = grid_env(home, "production")
    tag, name = f"GT-BENCH-{uuid.uuid4().hex[:4]}", f"bench-{uuid.uuid4().hex[:6]}"
    subprocess.run([str(BIN / "juno-payload"), "make-conditions", "--tag", tag, "--runs", "1-999999",
                    "--home", str(home)], check=True, capture_output=True, env=env)
    steering = tmp / f"{name}.yaml"
    steering.write_text(yaml.safe_dump({
        "name": name, "campaign": "BENCH", "software": "J25.1.0",
        "args": {"detsim": "gun --particles e- --momentums 2.0 --volume pTarget"}, "events_per_job": 20, "jobs": jobs,
        "workflow": ["detsim", "elecsim", "cal", "rec"], "conditions_tag": tag, "run": 1234,
        "output_storage": "site-local", "destinations": ["CNAF_DISK"], "lifetime": "2 days"}))
    started = time.monotonic()
    subprocess.run([str(BIN / "juno-prod"), "submit", str(steering)], check=True, capture_output=True, env=env)
    grid = GridHome(home)
    client = root_client(grid, grid.load_state())
    final = f"mc.BENCH.{name}.rec"
    done_at: float | None = None
    steps: dict[str, float] = {}
    while time.monotonic() - started < 7200:
        status = json.loads(subprocess.run([str(BIN / "juno-prod"), "status", name, "--json"], check=True,
                                           capture_output=True, text=True, env=env).stdout)
        for step in status["steps"]:
            if step["closed"] and step["step"] not in steps:
                steps[step["step"]] = round(time.monotonic() - started, 1)
        rules = [r for r in client.list_did_rules("mc", final) if r["rse_expression"] == "CNAF_DISK"]
        if status["state"] == "done" and rules and rules[0]["state"] == "OK" and rules[0]["locks_ok_cnt"] == jobs:
            done_at = time.monotonic() - started
            break
        print(f"{time.monotonic() - started:6.0f} s  "
              + "  ".join(f"{s['step']} {s['jobs_by_state'].get('finished', 0)}/{s['jobs_created']}"
                          for s in status["steps"]), file=sys.stderr, flush=True)
        time.sleep(10)
    return {"production_s": None if done_at is None else round(done_at, 1), "jobs": jobs,
            "steps_closed_at_s": steps, "state": status["state"]}


def measure(args: argparse.Namespace, home: Path) -> dict[str, list[float]]:
    """Submission and getJob, tokens on and off alternately (the order flips every run), on one database."""
    jobs = specs(args.jobs)
    producer = client_token(client_auth(home, "production"))
    pilots = client_auth(home, "pilot")
    runs: dict[str, list[float]] = {"submit": [], "on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="wms-bench-") as tmp, throwaway_database("wms_bench") as url:
        configs = {"on": write_config(Path(tmp), url, agent_bulk=5000, pool_size=12, auth=grid_auth(home)),
                   "off": write_config(Path(tmp), url, agent_bulk=5000, pool_size=12)}
        with agent_for(configs["off"]) as agent:
            with Server(configs["off"], workers=args.workers) as server:  # warm-up, not counted: the database's
                truncate(url)                                            # and the machine's caches
                submit_once(server.url, jobs[:2000], "warm-up", None)
                while agent.run_once().full:
                    pass
                getjob_once(server.url, args.pilots, 2000, lambda: None)
            for run in range(args.runs):
                for mode in ("on", "off") if run % 2 == 0 else ("off", "on"):
                    with Server(configs[mode], workers=args.workers) as server:
                        truncate(url)
                        took = submit_once(server.url, jobs, f"bench-{run}-{mode}",
                                           producer if mode == "on" else None)
                        if mode == "on":
                            runs["submit"].append(took)
                        while agent.run_once().full:
                            pass

                        def pilot_token(on: bool = mode == "on") -> TokenProvider | None:
                            return client_token(pilots, scope=PILOT_SCOPES) if on else None

                        runs[mode].append(getjob_once(server.url, args.pilots, args.jobs, pilot_token))
                    print(f"run {run + 1} tokens {mode}: getjob {runs[mode][-1]:.0f}/s"
                          + (f", submit {took:.2f} s" if mode == "on" else ""), file=sys.stderr)
    return runs


def token_check_us(home: Path, calls: int = 100_000) -> float:
    """Microseconds per check of a token already verified once (what every getJob of a pilot costs the server)."""
    from juno_dcs.tokens.config import IdentityCache, ServiceAuth
    from juno_dcs.tokens.verify import bearer
    from juno_dcs.wms.access import Caller, Rules

    auth = ServiceAuth.model_validate(grid_auth(home))
    identities, rules = IdentityCache(auth.verifier()), Rules.of(auth, "/juno/pilots", "/juno/production")
    header = f"Bearer {client_token(client_auth(home, 'pilot'), scope=PILOT_SCOPES)()}"
    identities.identify(bearer(header))
    start = time.perf_counter()
    for _ in range(calls):
        token = bearer(header)
        Caller(identities.known(token) or identities.identify(token), rules).pilot("taking a job")
    return (time.perf_counter() - start) / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--pilots", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--production-jobs", type=int, default=200)
    parser.add_argument("--home", type=Path, default=None, help="A running grid: its token issuer, and the "
                        "production (default: start one)")
    args = parser.parse_args()
    made: dict[str, Any] | None = None
    tmp_root = Path(tempfile.mkdtemp(prefix="juno-bench-wms-"))
    tmp_root.chmod(0o755)
    home = args.home or tmp_root / "grid"
    try:
        if args.home is None:
            subprocess.run([JUNO_DCS, "up", "--home", str(home), "--base-port", str(free_base_port())],
                           check=True, capture_output=True)
        runs = measure(args, home)
        check_us = token_check_us(home)
        if args.production_jobs:
            made = production(home, args.production_jobs, tmp_root)
    finally:
        if args.home is None:
            subprocess.run([JUNO_DCS, "down", "--purge", "--home", str(home)], check=False, capture_output=True)
        shutil.rmtree(tmp_root, ignore_errors=True)
    on, off = statistics.median(runs["on"]), statistics.median(runs["off"])
    out: dict[str, Any] = {
        "submit_10k_s": round(statistics.median(runs["submit"]), 3),
        "getjob_per_s": round(on, 1),
        "getjob_per_s_tokens_off": round(off, 1),
        "getjob_token_cost": round(1 - on / off, 3),
        "getjob_token_cost_pairs": round(statistics.median(1 - a / b for a, b in zip(runs["on"], runs["off"],
                                                                                      strict=True)), 3),
        "token_check_us": round(check_us, 1),
        f"production_{args.production_jobs}_s": made["production_s"] if made else None,
        "production": made,
        "runs": args.runs, "jobs": args.jobs, "pilots": args.pilots, "server_workers": args.workers,
        "cpus": os.cpu_count(),
        "submit_runs_s": [round(s, 3) for s in runs["submit"]],
        "getjob_runs_per_s": [round(g, 1) for g in runs["on"]],
        "getjob_runs_per_s_tokens_off": [round(g, 1) for g in runs["off"]],
    }
    print(json.dumps(stamp(out), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
