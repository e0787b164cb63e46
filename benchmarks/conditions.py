"""Benchmark: condition data for many jobs at once, three ways side by side.

N concurrent clients (default 200: threads spread over a few processes) each read the same conditions of one
run R times (default 50): the run's lookup for every folder of a locked tag, then each folder's payload.

    direct   the clients run the service's queries on MariaDB themselves (at most 100 connections at once:
             MariaDB's default limit is 151, so 200 clients share them)
    service  each client asks the conditions service (uvicorn, 2 workers) with the client library
    squid    the same through one Squid in front of the service (warmed by one read first)

The client library runs without its in-process cache, so that every read reaches the endpoint. Printed: reads
per second, p50 and p99 latency of one read, MariaDB queries per second during the run (global `Questions`),
and `squid_speedup` = squid reads/s / direct reads/s (aim: >= 20; the paper saw > 10). One JSON object.

    .venv/bin/python benchmarks/conditions.py [--clients 200] [--reads 50] [--processes 4] [--channels 2000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import stamp
from tests.integration.conditions_stack import ADMIN_URL, Service, Squid, build_tag, make_db, mariadb_answers

from juno_dcs.conditions import db, grid, logic
from juno_dcs.conditions.client import ConditionsClient

RUN = 1500
DIRECT_CONNECTIONS = 100  # at most, over all processes (MariaDB's default max_connections is 151)


def _read_direct(engine: sa.Engine, tag: str) -> int:
    with engine.connect() as conn:
        _, refs = logic.lookup_all(conn, tag, RUN)
        data = db.payloads_of(conn, [r.payload_hash for r in refs])
    return sum(len(d) for d in data.values())


def _read_http(client: ConditionsClient, tag: str) -> int:
    refs = client.refs(tag, RUN)
    return sum(len(client.payload_bytes(r.payload_hash)) for r in refs.values())


def _worker(mode: str, target: str, tag: str, threads: int, reads: int, connections: int, start: Any,
            out: Any) -> None:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    # MariaDB takes 151 connections by default: the direct clients of a process share a capped pool
    engine = sa.create_engine(target, pool_size=connections, max_overflow=0, pool_timeout=120) \
        if mode == "direct" else None

    def client_thread() -> None:
        mine: list[float] = []
        if engine is not None:
            def read() -> int:
                return _read_direct(engine, tag)
        else:
            client = ConditionsClient([target] if mode == "squid" else [], [] if mode == "squid" else [target],
                                      cache=False, read_timeout=60)

            def read() -> int:
                return _read_http(client, tag)
        start.wait()
        try:
            for _ in range(reads):
                began = time.perf_counter()
                read()
                mine.append(time.perf_counter() - began)
        except Exception as exc:  # a benchmark reports failures instead of hiding them
            with lock:
                errors.append(f"{exc.__class__.__name__}: {exc}")
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client_thread) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((latencies, errors))


def _questions() -> int:
    engine = sa.create_engine(ADMIN_URL, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        value = conn.execute(sa.text("SHOW GLOBAL STATUS LIKE 'Questions'")).one()[1]
    engine.dispose()
    return int(value)


def run_mode(mode: str, target: str, tag: str, clients: int, reads: int, processes: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(processes + 1), ctx.Queue()
    per = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    connections = max(1, DIRECT_CONNECTIONS // processes)
    procs = [ctx.Process(target=_proc, args=(mode, target, tag, n, reads, connections, start, out)) for n in per]
    for p in procs:
        p.start()
    start.wait()
    q0, t0 = _questions(), time.perf_counter()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    q1 = _questions()
    for p in procs:
        p.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = [e for _, errs in results for e in errs]
    done = len(latencies)
    return {
        "reads": done, "errors": len(errors), "first_error": errors[0] if errors else None,
        "seconds": round(elapsed, 2), "reads_per_s": round(done / elapsed, 1),
        "p50_ms": round(1000 * latencies[done // 2], 2) if done else None,
        "p99_ms": round(1000 * latencies[min(done - 1, int(done * 0.99))], 2) if done else None,
        "db_queries_per_s": round((q1 - q0) / elapsed, 1),
    }


def _proc(mode: str, target: str, tag: str, threads: int, reads: int, connections: int, start: Any,
          out: Any) -> None:
    """One process of clients: its threads are released together once every process is ready."""
    inner = threading.Barrier(threads + 1)

    def go() -> None:
        _worker(mode, target, tag, threads, reads, connections, inner, out)

    runner = threading.Thread(target=go)
    runner.start()
    start.wait()  # every process is ready
    inner.wait()  # release this process's clients
    runner.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--channels", type=int, default=2000, help="channels of the PMT and timing payloads")
    args = parser.parse_args()
    if not mariadb_answers():
        print(json.dumps({"error": f"no MariaDB at {ADMIN_URL}"}))
        return 1
    root = Path(tempfile.mkdtemp(prefix="juno-conditions-bench-"))
    root.chmod(0o755)
    database = make_db()
    service = Service(root, database.reader_url)
    squid = Squid(grid.SquidHome(root / "squid" / "IHEP"), "IHEP", service.port)
    try:
        service.start()
        squid.start()
        tag, payloads = build_tag(database, root, channels=args.channels)
        warm = ConditionsClient([squid.url], [], cache=False)
        _read_http(warm, tag)
        modes = {}
        for mode, target in (("direct", database.reader_url), ("service", service.url), ("squid", squid.url)):
            modes[mode] = run_mode(mode, target, tag, args.clients, args.reads, args.processes)
        result = {
            "benchmark": "conditions", "cpus": os.cpu_count(), "clients": args.clients, "reads_per_client": args.reads,
            "direct_connections": DIRECT_CONNECTIONS, "folders": len(payloads),
            "bytes_per_read": sum(len(p) for p in payloads.values()),
            **{mode: figures for mode, figures in modes.items()},
            "squid_speedup": round(modes["squid"]["reads_per_s"] / modes["direct"]["reads_per_s"], 2),
            "squid_speedup_over_service": round(modes["squid"]["reads_per_s"] / modes["service"]["reads_per_s"], 2),
            "squid_p50_speedup": round(modes["direct"]["p50_ms"] / modes["squid"]["p50_ms"], 2),
        }
        print(json.dumps(stamp(result), indent=2))
    finally:
        squid.stop()
        service.stop()
        grid.drop_database(ADMIN_URL, database.name, database.reader_user, database.writer_user)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
