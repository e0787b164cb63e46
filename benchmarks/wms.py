"""Benchmark: the dispatcher (`juno-wms serve`) on PostgreSQL, through its HTTP API.

1. `submit_10k_s`: one task of 10,000 jobs posted to POST /v1/tasks (client-side JSON included), median of N runs.
2. `getjob_per_s`: 50 concurrent pilots (threads, each with its own requests.Session) calling POST
   /v1/pilot/getjob against `juno-wms serve --workers 2` until 10,000 activated jobs are all handed out;
   jobs per second, median of N runs (aim: >= 1000). Each job is checked to be handed out exactly once.
3. `production_200_s`: null here (the production benchmark fills it).

Uses a throwaway database on the local PostgreSQL (127.0.0.1:5432, user postgres) and prints one JSON object.

    .venv/bin/python benchmarks/wms.py [--runs 3] [--jobs 10000] [--pilots 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.wms_helpers import Server, agent_for, throwaway_database, truncate, write_config

from juno_dcs.wms.client import WmsClient
from juno_dcs.wms.models import JobSpec


def specs(n: int) -> list[JobSpec]:
    return [JobSpec(key=f"j{i}", transformation="detsim", args=["--events", "10", "--seed", str(i)],
                    memory_mb=200, site="IHEP") for i in range(n)]


def submit_once(url: str, jobs: list[JobSpec], name: str) -> float:
    start = time.perf_counter()
    WmsClient(url, timeout=300).submit_task(name, "production", "production", jobs)
    return time.perf_counter() - start


def getjob_once(url: str, n_pilots: int, expected: int) -> float:
    got: list[list[int]] = [[] for _ in range(n_pilots)]
    errors: list[str] = []
    barrier = threading.Barrier(n_pilots + 1)

    def pilot(i: int) -> None:
        client = WmsClient(url, session=requests.Session())
        client.health()  # connect before the clock starts
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--pilots", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = specs(args.jobs)
    submit: list[float] = []
    getjob: list[float] = []
    with tempfile.TemporaryDirectory(prefix="wms-bench-") as tmp, throwaway_database("wms_bench") as url:
        config = write_config(Path(tmp), url, agent_bulk=5000, pool_size=12)
        with Server(config, workers=args.workers) as server, agent_for(config) as agent:
            for run in range(args.runs):
                truncate(url)
                submit.append(submit_once(server.url, jobs, f"bench-{run}"))
                while agent.run_once().full:
                    pass
                getjob.append(getjob_once(server.url, args.pilots, args.jobs))
                print(f"run {run + 1}: submit {submit[-1]:.2f} s, getjob {getjob[-1]:.0f}/s", file=sys.stderr)
    out: dict[str, Any] = {
        "submit_10k_s": round(statistics.median(submit), 3),
        "getjob_per_s": round(statistics.median(getjob), 1),
        "production_200_s": None,
        "runs": args.runs, "jobs": args.jobs, "pilots": args.pilots, "server_workers": args.workers,
        "cpus": os.cpu_count(),
        "submit_runs_s": [round(s, 3) for s in submit], "getjob_runs_per_s": [round(g, 1) for g in getjob],
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
