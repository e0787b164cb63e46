"""The closed loop of benchmarks/conditions.py: reads per second at saturation, one way at a time.

`clients` threads spread over `processes` processes (forked, released together) each read the conditions of one
run `reads` times, as fast as they can: the lookup of the run, then its payloads (sha256 checked).

    direct   the service's queries on MariaDB, through a pool per process (at most 100 connections in all:
             MariaDB's default limit is 151)
    service  the client library against the service, without its in-process cache
    squid    the same against a Squid
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from juno_dcs.conditions import db, logic
from juno_dcs.conditions.client import ConditionsClient

DIRECT_CONNECTIONS = 100  # at most, over all processes


def _checked(expected: dict[str, str], refs: dict[str, str], data: dict[str, bytes]) -> int:
    if refs != expected or any(hashlib.sha256(data[d]).hexdigest() != d for d in expected.values()):
        raise AssertionError("wrong or partial payloads")
    return sum(len(d) for d in data.values())


def _reader(way: str, target: str, tag: str, run: int, expected: dict[str, str],
            engine: sa.Engine | None) -> Callable[[], int]:
    if engine is not None:
        def direct() -> int:
            with engine.connect() as conn:
                _, refs = logic.lookup_all(conn, tag, run)
                data = db.payloads_of(conn, [r.payload_hash for r in refs])
            return _checked(expected, {r.folder: r.payload_hash for r in refs}, data)
        return direct
    client = ConditionsClient([target] if way == "squid" else [], [] if way == "squid" else [target],
                              cache=False, read_timeout=120)

    def http() -> int:
        refs = client.refs(tag, run)
        return _checked(expected, {f: r.payload_hash for f, r in refs.items()}, client.fetch(refs.values()))
    return http


def _process(way: str, target: str, tag: str, run: int, expected: dict[str, str], threads: int, reads: int,
             connections: int, start: Any, out: Any) -> None:
    engine = sa.create_engine(target, pool_size=connections, max_overflow=0, pool_timeout=300) \
        if way == "direct" else None
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    inner = threading.Barrier(threads + 1)

    def client() -> None:
        read = _reader(way, target, tag, run, expected, engine)
        mine: list[float] = []
        inner.wait()
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

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()  # every process is ready
    inner.wait()  # release this process's clients
    for worker in workers:
        worker.join()
    out.put((latencies, errors))


def saturation(way: str, target: str, tag: str, run: int, expected: dict[str, str], clients: int, reads: int,
               processes: int) -> dict[str, Any]:
    """Reads/s, p50 and p99 of one read (ms), errors."""
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(processes + 1), ctx.Queue()
    per = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    connections = max(1, DIRECT_CONNECTIONS // processes)
    procs = [ctx.Process(target=_process, args=(way, target, tag, run, expected, n, reads, connections, start, out))
             for n in per]
    for proc in procs:
        proc.start()
    start.wait()
    began = time.perf_counter()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - began
    for proc in procs:
        proc.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = [e for _, errs in results for e in errs]
    done = len(latencies)
    return {
        "reads": done, "errors": len(errors), "first_error": errors[0] if errors else None,
        "seconds": round(elapsed, 2), "reads_per_s": round(done / elapsed, 1),
        "p50_ms": round(1000 * latencies[done // 2], 1) if done else None,
        "p99_ms": round(1000 * latencies[min(done - 1, int(done * 0.99))], 1) if done else None,
    }
