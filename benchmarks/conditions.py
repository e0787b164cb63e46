"""Benchmark: condition data for jobs at a remote site, across an emulated round trip to IHEP, three ways.

IHEP's side: a MariaDB of its own (started here in a temporary directory, so that its status counters count
only this benchmark) and the conditions service (uvicorn, 2 workers). The link (benchmarks/wan.py, in a child
process) adds `--rtt-ms` of round trip between them and the site. The site's side: its Squid, whose parent is
the service across the link, and the jobs. The ways:

    direct   a job connects to MariaDB across the link and runs the service's queries itself (a new connection
             per job, as a job on a worker node does)
    service  a job asks the service across the link (the client library, a new client per job)
    squid    a job asks the site's Squid (the client library: proxies = the Squid, servers = the service across
             the link)

Per job (open loop): jobs arrive at `--rate` per second for `--seconds`, each loading the conditions of its run
once: the run's lookup of 3 folders of a locked tag and their payloads (sha256 checked), 78 kB. A new run starts
every `--run-every` seconds; its first job is "cold" (at the site nothing of that run is cached: each run has its
own energy_scale payload), the jobs that start after it finished are "warm". A job's time counts from its
arrival, so waiting for the machine is in it. `squid_speedup` = direct warm p50 / Squid warm p50. MariaDB
queries/s from its `Questions` counter on IHEP's side; bytes crossing the link from the link's counters.

At saturation (closed loop, as before): `--clients` threads in `--processes` processes each read `--reads` times
as fast as they can, without the client's in-process cache (direct: pooled connections, at most 100).

Also measured at each RTT: a cold read of a new tag at the site, the HTTP requests it makes and its time in round
trips, the way the client does it now (the lookup, then one bundle) and the way it did before this benchmark
was written (the lookup, then one request per payload). At the largest RTT: the site's Squid down (jobs fall
over to the service across the link), then the link cut for `--outage-s` (jobs arriving meanwhile wait and retry
within their deadline). One JSON object; with several RTTs a `points` list. `--plot` draws job load time
against RTT for the three ways.

    .venv/bin/python benchmarks/conditions.py [--rtt-ms 0 50 180] [--seconds 20] [--rate 20] [--outage-s 30]
        [--plot docs/images/conditions-rtt.png] > benchmarks/results/conditions.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.conditions_closed_loop import saturation
from benchmarks.machine import stamp
from benchmarks.wan import LinkProcess
from tests.integration.conditions_stack import (
    CondDb,
    Service,
    Squid,
    energy_scale,
    free_port,
    make_db,
    pmt_gains,
    timing_offsets,
)

from juno_dcs.conditions import db, logic
from juno_dcs.conditions.client import ConditionsClient
from juno_dcs.conditions.models import FolderInfo, RunRange, payload_hash
from juno_dcs.grid import conditions as grid

WAYS = ("direct", "service", "squid")
RUNS_PER_POINT = 400  # runs with their own energy_scale payload in each point's tag


class PrivateMariaDB:
    """IHEP's MariaDB: a server of the benchmark's own, on a free port under `root` (removed with it)."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/"

    def start(self) -> None:
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.root / 'data'}", "--skip-test-db",
                        "--auth-root-authentication-method=normal", *user], check=True, capture_output=True)
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.root / 'data'}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.root / 'sock'}", f"--pid-file={self.root / 'pid'}",
             "--skip-name-resolve", "--max-connections=500", "--innodb-buffer-pool-size=128M",
             f"--log-error={self.root / 'error.log'}", *user], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.status()
                return
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def status(self) -> dict[str, int]:
        engine = sa.create_engine(self.admin_url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SHOW GLOBAL STATUS WHERE Variable_name IN "
                                            "('Questions', 'Com_select', 'Connections')")).all()
        finally:
            engine.dispose()
        return {str(name): int(value) for name, value in rows}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


def measure_rtt(port: int, samples: int = 7) -> float:
    """The median ping-pong time in ms through the link's echo route."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(samples + 1):
            began = time.perf_counter()
            sock.sendall(b"x")
            sock.recv(1)
            times.append(time.perf_counter() - began)
    return round(1000 * statistics.median(times[1:]), 1)  # the first one also pays the handshake


# --- condition data
def build_tag(database: CondDb, runs: range, channels: int, seed: int) -> tuple[str, dict[int, dict[str, str]]]:
    """A locked tag: pmt_gains and timing_offsets for all `runs`, an energy_scale of each run's own; returns the
    tag and every run's expected payload hash by folder."""
    tag = f"BENCH{secrets.token_hex(3)}"
    gains, offsets = pmt_gains(channels, seed=seed), timing_offsets(channels, seed=seed)
    engine = sa.create_engine(database.writer_url, poolclass=sa.pool.NullPool)
    expected: dict[int, dict[str, str]] = {}
    with engine.begin() as conn:
        logic.create_tag(conn, tag, "benchmark")
        whole = RunRange(first=runs[0], last=runs[-1])
        for folder, data in ((FolderInfo(name="pmt_gains", payload_type="pmt_gains"), gains),
                             (FolderInfo(name="timing_offsets", payload_type="timing_offsets"), offsets)):
            logic.add_payload(conn, tag, folder, whole, data)
        scale = FolderInfo(name="energy_scale", payload_type="energy_scale")
        for run in runs:
            data = energy_scale(1500 + run / 1000 + seed)
            logic.add_payload(conn, tag, scale, RunRange(first=run, last=run), data)
            expected[run] = {"pmt_gains": payload_hash(gains), "timing_offsets": payload_hash(offsets),
                             "energy_scale": payload_hash(data)}
        logic.lock_tag(conn, tag)
    engine.dispose()
    return tag, expected


def check(expected: dict[str, str], refs: dict[str, str], data: dict[str, bytes]) -> None:
    """The payloads a job got are the ones put in, whole."""
    if refs != expected:
        raise AssertionError(f"wrong payload references {refs} (expected {expected})")
    for digest in expected.values():
        if hashlib.sha256(data[digest]).hexdigest() != digest:
            raise AssertionError(f"payload {digest}: wrong or partial bytes")


def job_direct(engine: sa.Engine, tag: str, run: int, expected: dict[str, str]) -> None:
    with engine.connect() as conn:
        _, refs = logic.lookup_all(conn, tag, run)
        data = db.payloads_of(conn, [r.payload_hash for r in refs])
    check(expected, {r.folder: r.payload_hash for r in refs}, data)


def job_http(proxies: list[str], servers: list[str], tag: str, run: int, expected: dict[str, str],
             retry_for: float = 0.0) -> ConditionsClient:
    client = ConditionsClient(proxies, servers, connect_timeout=5, read_timeout=60, retry_for=retry_for)
    try:
        refs = client.refs(tag, run)
        check(expected, {f: r.payload_hash for f, r in refs.items()}, client.fetch(refs.values()))
    finally:
        client.close()
    return client


# --- measuring
def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1)


def open_loop(job: Callable[[int], object], runs: list[int], rate: float, seconds: float,
              run_every: float) -> dict[str, Any]:
    """Jobs arriving every 1/rate s for `seconds`, a new run every `run_every` s; p50/p99 in ms of a job's time
    from its arrival, for the first job of each run (cold), the jobs that arrived after it finished (warm), all."""
    count, per_run = int(rate * seconds), max(1, round(rate * run_every))
    finished: dict[int, float] = {}  # run -> when its first job finished
    results: list[tuple[int, bool, float, float]] = []  # (run, cold, arrival, latency)
    errors: list[str] = []
    lock = threading.Lock()

    def one(run: int, cold: bool, arrival: float) -> None:
        try:
            job(run)
        except Exception as exc:  # a benchmark reports failures instead of hiding them
            with lock:
                errors.append(f"{exc.__class__.__name__}: {exc}")
            return
        done = time.perf_counter()
        with lock:
            results.append((run, cold, arrival, done - arrival))
            if cold:
                finished[run] = done

    start = time.perf_counter() + 0.2
    threads = []
    for i in range(count):
        arrival = start + i / rate
        time.sleep(max(0.0, arrival - time.perf_counter()))
        thread = threading.Thread(target=one, args=(runs[i // per_run], i % per_run == 0, arrival), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=300)
    cold = [lat for _, c, _, lat in results if c]
    warm = [lat for run, c, arrival, lat in results if not c and arrival >= finished.get(run, float("inf"))]
    every = [lat for *_, lat in results]
    return {"jobs": count, "errors": len(errors), "first_error": errors[0] if errors else None,
            "cold_jobs": len(cold), "warm_jobs": len(warm),
            "cold_p50_ms": percentile(cold, 0.5), "cold_p99_ms": percentile(cold, 0.99),
            "warm_p50_ms": percentile(warm, 0.5), "warm_p99_ms": percentile(warm, 0.99),
            "all_p50_ms": percentile(every, 0.5), "all_p99_ms": percentile(every, 0.99)}


def cold_read(proxies: list[str], servers: list[str], database: CondDb, channels: int, rtt_ms: float,
              old_way: bool) -> dict[str, Any]:
    """A new tag's first read at the site: HTTP requests made, time, time in round trips."""
    tag, expected = build_tag(database, range(1000, 1001), channels, seed=secrets.randbelow(10**6))
    client = ConditionsClient(proxies, servers, connect_timeout=5, read_timeout=60)
    began = time.perf_counter()
    refs = client.refs(tag, 1000)
    if old_way:  # the lookup, then one request per payload
        data = {r.payload_hash: client.payload_bytes(r.payload_hash) for r in refs.values()}
    else:
        data = client.fetch(refs.values())
    seconds = time.perf_counter() - began
    check(expected[1000], {f: r.payload_hash for f, r in refs.items()}, data)
    client.close()
    return {"http_requests": sum(client.stats.requests.values()), "ms": round(1000 * seconds, 1),
            "round_trips": round(1000 * seconds / rtt_ms, 2) if rtt_ms else None}


class Point:
    """Everything at one RTT: the link, the site's Squid, a tag with RUNS_PER_POINT runs."""

    def __init__(self, args: argparse.Namespace, root: Path, mariadb: PrivateMariaDB, database: CondDb,
                 service: Service, echo_port: int, rtt_ms: float, index: int) -> None:
        self.args, self.mariadb, self.database, self.rtt_ms = args, mariadb, database, rtt_ms
        self.link = LinkProcess([("127.0.0.1", service.port), ("127.0.0.1", mariadb.port),
                                 ("127.0.0.1", echo_port)], rtt_ms=rtt_ms)
        self.squid_home = grid.SquidHome(root / f"squid-{index}")
        self.service_port = service.port
        self.squid: Squid | None = None
        self.next_run = 1000

    def runs(self, count: int) -> list[int]:
        taken = list(range(self.next_run, self.next_run + count))
        self.next_run += count
        if self.next_run > 1000 + RUNS_PER_POINT:
            raise ValueError("more runs than the tag has: lower --seconds or --rate, or raise --run-every")
        return taken

    def jobs(self, way: str, tag: str, expected: dict[int, dict[str, str]]) -> Callable[[int], object]:
        assert self.squid is not None
        service_url, squid_url = self.link.url(0), self.squid.url
        if way == "direct":
            url = sa.engine.make_url(self.database.reader_url).set(host="127.0.0.1", port=self.link.ports[1])
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)  # a new connection per job
            return lambda run: job_direct(engine, tag, run, expected[run])
        proxies = [squid_url] if way == "squid" else []
        return lambda run: job_http(proxies, [service_url], tag, run, expected[run])

    def measure(self) -> dict[str, Any]:
        args = self.args
        self.link.start()
        self.squid = Squid(self.squid_home, "CNAF", self.link.ports[0])
        self.squid.start()
        tag, expected = build_tag(self.database, range(1000, 1000 + RUNS_PER_POINT), args.channels, seed=1)
        result: dict[str, Any] = {"rtt_ms": self.rtt_ms, "rtt_measured_ms": measure_rtt(self.link.ports[2])}
        per_way = int(args.seconds / args.run_every) + 1
        for way in WAYS:
            before, link_before, began = self.mariadb.status(), self.link.stats(), time.perf_counter()
            figures = open_loop(self.jobs(way, tag, expected), self.runs(per_way), args.rate, args.seconds,
                                args.run_every)
            elapsed = time.perf_counter() - began
            after, link_after = self.mariadb.status(), self.link.stats()
            questions = after["Questions"] - before["Questions"] - 1  # less the second SHOW STATUS itself
            figures.update({
                "db_queries_per_s": round(questions / elapsed, 2),
                "db_queries_per_job": round(questions / figures["jobs"], 2),
                "db_connections": after["Connections"] - before["Connections"] - 1,
                "link_bytes": (link_after["bytes_up"] + link_after["bytes_down"]
                               - link_before["bytes_up"] - link_before["bytes_down"]),
            })
            result[way] = figures
        result["squid_speedup"] = _ratio(result["direct"]["warm_p50_ms"], result["squid"]["warm_p50_ms"])
        result["squid_speedup_cold"] = _ratio(result["direct"]["cold_p50_ms"], result["squid"]["cold_p50_ms"])
        result["squid_speedup_over_service"] = _ratio(result["service"]["warm_p50_ms"],
                                                      result["squid"]["warm_p50_ms"])
        result["db_queries_direct_over_squid"] = _ratio(result["direct"]["db_queries_per_s"],
                                                        result["squid"]["db_queries_per_s"])
        proxies, servers = [self.squid.url], [self.link.url(0)]
        result["cold_read"] = cold_read(proxies, servers, self.database, args.channels,
                                        result["rtt_measured_ms"], old_way=False)
        result["cold_read_before"] = cold_read(proxies, servers, self.database, args.channels,
                                               result["rtt_measured_ms"], old_way=True)
        result["saturation"] = self.saturation(tag, expected)
        return result

    def saturation(self, tag: str, expected: dict[int, dict[str, str]]) -> dict[str, Any]:
        assert self.squid is not None
        run = self.runs(1)[0]
        direct = str(sa.engine.make_url(self.database.reader_url).set(host="127.0.0.1", port=self.link.ports[1])
                     .render_as_string(hide_password=False))
        found: dict[str, Any] = {}
        job_http([self.squid.url], [], tag, run, expected[run])  # Squid warmed by one read first, as before
        for way, target in (("direct", direct), ("service", self.link.url(0)), ("squid", self.squid.url)):
            before, began = self.mariadb.status(), time.perf_counter()
            found[way] = saturation(way, target, tag, run, expected[run], self.args.clients, self.args.reads,
                                    self.args.processes)
            questions = self.mariadb.status()["Questions"] - before["Questions"] - 1
            found[way]["db_queries_per_s"] = round(questions / (time.perf_counter() - began), 1)
        found["squid_speedup"] = _ratio(found["squid"]["reads_per_s"], found["direct"]["reads_per_s"])
        return found

    def failover(self, tag_runs: tuple[str, dict[int, dict[str, str]]], outage: float) -> dict[str, Any]:
        """The site's Squid down, then the link cut for `outage` s, at this point's RTT."""
        assert self.squid is not None
        tag, expected = tag_runs
        args, service_url, squid_url = self.args, self.link.url(0), self.squid.url
        self.squid.stop()
        down = open_loop(lambda run: job_http([squid_url], [service_url], tag, run, expected[run]),
                         self.runs(int(args.failover_seconds / args.run_every) + 1), args.rate,
                         args.failover_seconds, args.run_every)
        self.squid.start()
        warm_run = self.runs(1)[0]
        job_http([squid_url], [service_url], tag, warm_run, expected[warm_run])  # held by the site's Squid
        cold_runs = self.runs(int(outage) + 1)
        waits: list[float] = []
        local: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def job(run: int, into: list[float]) -> None:
            began = time.perf_counter()
            try:
                job_http([squid_url], [service_url], tag, run, expected[run], retry_for=outage + 60)
            except Exception as exc:
                with lock:
                    errors.append(f"{exc.__class__.__name__}: {exc}")
                return
            with lock:
                into.append(time.perf_counter() - began)

        self.link.cut()
        began = time.perf_counter()
        threads = []
        for run in cold_runs:  # one new run a second while the link is down, and a job of a run the Squid has
            for target, into in ((run, waits), (warm_run, local)):
                thread = threading.Thread(target=job, args=(target, into), daemon=True)
                thread.start()
                threads.append(thread)
            time.sleep(max(0.0, began + (len(threads) // 2) - time.perf_counter()))
            if time.perf_counter() - began >= outage:
                break
        time.sleep(max(0.0, began + outage - time.perf_counter()))
        self.link.restore()
        for thread in threads:
            thread.join(timeout=outage + 120)
        return {
            "squid_down": down,
            "link_cut": {"outage_s": outage, "jobs_needing_the_link": len(threads) // 2, "jobs_ok": len(waits),
                         "errors": len(errors), "first_error": errors[0] if errors else None,
                         "wrong_payloads": sum("wrong" in e for e in errors),
                         "wait_min_s": round(min(waits), 2) if waits else None,
                         "wait_max_s": round(max(waits), 2) if waits else None,
                         "served_by_the_site_squid_during_the_cut_p50_ms": percentile(local, 0.5)},
        }

    def stop(self) -> None:
        if self.squid is not None:
            self.squid.stop()
        self.link.stop()


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=120)
    rtts = [p["rtt_measured_ms"] for p in points]
    for way, colour, label in (("direct", "tab:red", "direct MariaDB"), ("service", "tab:blue", "service, no Squid"),
                               ("squid", "tab:green", "site Squid")):
        axes.plot(rtts, [p[way]["warm_p50_ms"] for p in points], "o-", color=colour, label=f"{label}, warm p50")
        axes.plot(rtts, [p[way]["cold_p50_ms"] for p in points], "s--", color=colour, alpha=0.6,
                  label=f"{label}, cold p50")
    axes.set_yscale("log")
    axes.set_xlabel("round trip site - IHEP (ms, measured)")
    axes.set_ylabel("a job's conditions load (ms)")
    axes.set_title("Conditions of one run (3 folders, 78 kB) for jobs at a remote site")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[0.0, 50.0, 180.0])
    parser.add_argument("--rate", type=float, default=20.0, help="jobs arriving per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="of arrivals per way and RTT")
    parser.add_argument("--run-every", type=float, default=2.0, help="seconds between new runs")
    parser.add_argument("--clients", type=int, default=40, help="closed loop: clients")
    parser.add_argument("--reads", type=int, default=10, help="closed loop: reads per client")
    parser.add_argument("--processes", type=int, default=2, help="closed loop: processes")
    parser.add_argument("--channels", type=int, default=2000, help="channels of the PMT and timing payloads")
    parser.add_argument("--outage-s", type=float, default=30.0, help="the link cut at the largest RTT (0: no)")
    parser.add_argument("--failover-seconds", type=float, default=10.0, help="of arrivals with the Squid down")
    parser.add_argument("--plot", type=Path, help="a PNG of job load time against RTT")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="juno-conditions-bench-"))
    root.chmod(0o755)
    mariadb = PrivateMariaDB(root / "mariadb")
    (root / "mariadb").mkdir()
    echo = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    service: Service | None = None
    points: list[dict[str, Any]] = []
    failover: dict[str, Any] | None = None
    try:
        mariadb.start()
        database = make_db(mariadb.admin_url)
        service = Service(root, database.reader_url)
        service.start()
        for index, rtt in enumerate(args.rtt_ms):
            point = Point(args, root, mariadb, database, service, echo.server_address[1], rtt, index)
            try:
                points.append(point.measure())
                print(f"RTT {rtt:g} ms: {json.dumps(points[-1])}", file=sys.stderr, flush=True)
                if args.outage_s > 0 and rtt == max(args.rtt_ms):
                    tag = build_tag(database, range(1000, 1000 + RUNS_PER_POINT), args.channels, seed=2)
                    failover = {"rtt_ms": rtt, **point.failover(tag, args.outage_s)}
                    failover["squid_down"]["slowdown_warm_p50"] = _ratio(
                        failover["squid_down"]["warm_p50_ms"], points[-1]["squid"]["warm_p50_ms"])
            finally:
                point.stop()
    finally:
        if service is not None:
            service.stop()
        echo.shutdown()
        echo.server_close()
        mariadb.stop()
        shutil.rmtree(root, ignore_errors=True)
    settings = {"rate_per_s": args.rate, "seconds": args.seconds, "run_every_s": args.run_every,
                "closed_loop": {"clients": args.clients, "reads_per_client": args.reads, "processes": args.processes},
                "folders": 3, "channels": args.channels, "cpus": os.cpu_count()}
    aims = {"squid_speedup": ">= 20 at 180 ms (the paper saw > 10)",
            "http_requests": "<= 2 (a cold read: at most 2 round trips)", "db_queries_direct_over_squid": ">= 1,000"}
    body: dict[str, Any] = points[0] if len(points) == 1 else {"points": points}
    result = {"benchmark": "conditions", **settings, **body, "failover": failover, "aims": aims}
    if args.plot:
        plot(points, args.plot)
    print(json.dumps(stamp(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
