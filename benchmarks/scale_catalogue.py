"""benchmarks/scale.py's catalogue side: fill a grid's Rucio catalogue to a size, then time what people and
services do with it. Every figure comes from the running grid; see scale.py for the list."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import ingest
from benchmarks.scale_shape import RAW_BLOCKS, UNIT_FILES, block_day, units_between
from benchmarks.wms import grid_env
from tests.conftest import JUNO_DCS

from juno_dcs.grid.home import GridHome

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 600.0  # a command that takes longer is recorded as null, with the timeout in "timed_out"


def log(text: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def timed(cmd: list[str], env: dict[str, str] | None = None, runs: int = 1, ok: tuple[int, ...] = (0,)) -> float | None:
    """Median wall seconds of `runs` runs of `cmd` (its exit code one of `ok`), fewer once a run took over 5 s;
    None when a run took longer than TIMEOUT_S."""
    took: list[float] = []
    for _ in range(runs):
        if took and took[-1] > 5:
            break
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None
        if proc.returncode not in ok:
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
        took.append(time.perf_counter() - start)
    return round(statistics.median(took), 3)


def http_get_s(url: str, runs: int = 3) -> float | None:
    """Median wall seconds of a GET of `url`; None when one took longer than TIMEOUT_S."""
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 (loopback)
                response.read()
        except TimeoutError:
            return None
        took.append(time.perf_counter() - start)
    return round(statistics.median(took), 3)


# --- the fill ---------------------------------------------------------------------------------------------------

def _fill_cmd(home: Path, *extra: str) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ, RUCIO_CONFIG=str(home / "etc" / "rucio.cfg"))
    return [sys.executable, str(HERE / "scale_fill.py"), *extra], env


def fill(home: Path, files_from: int, files_to: int, workers: int, user_scopes: list[str],
         mode: str = "api") -> dict[str, Any]:
    """Grow the catalogue from `files_from` to `files_to` files with `workers` processes; the fill rate.
    `mode` "copy": Rucio registers the template unit, COPY writes the others (benchmarks/scale_load.py)."""
    units = len(units_between(files_from, files_to))
    if not units:
        return {"fill_s": 0.0, "fill_files_per_s": None, "fill_mode": mode}
    start = time.perf_counter()
    added = 0
    with _progress(units * UNIT_FILES, f"fill {files_from:,} -> {files_to:,} ({mode})") as advance:
        if mode == "copy" and files_from < UNIT_FILES:  # the template first, by Rucio, alone
            added += _run_fill(home, [["--from", "0", "--to", str(UNIT_FILES)]], user_scopes, advance)
        extra = ["--copy"] if mode == "copy" else []
        added += _run_fill(home, [[*extra, "--from", str(files_from), "--to", str(files_to), "--worker", str(w),
                                   "--workers", str(workers)] for w in range(workers)], user_scopes, advance)
    took = time.perf_counter() - start
    return {"fill_s": round(took, 1), "filled_files": added, "fill_mode": mode,
            "fill_files_per_s": round(added / took, 1) if added else None}


def _run_fill(home: Path, arg_sets: list[list[str]], user_scopes: list[str], advance: Callable[[int], None]) -> int:
    """Fill processes with these arguments, at once; the files they added."""
    procs = []
    for args in arg_sets:
        cmd, env = _fill_cmd(home, *args, "--user-scopes", ",".join(user_scopes))
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True))
    added = 0
    for line in _merged_lines(procs):
        report = json.loads(line)
        added += report["files"] if report["added"] else 0
        advance(report["files"])
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a fill worker failed (exit {p.returncode})")
    return added


def _merged_lines(procs: list[subprocess.Popen[str]]) -> Iterator[str]:
    import selectors

    sel = selectors.DefaultSelector()
    for p in procs:
        assert p.stdout is not None
        sel.register(p.stdout, selectors.EVENT_READ)
    open_count = len(procs)
    while open_count:
        for key, _ in sel.select():
            line = key.fileobj.readline()  # type: ignore[union-attr]
            if line:
                yield line
            else:
                sel.unregister(key.fileobj)
                open_count -= 1


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when rich is there, else a line every 5 %."""
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    except ImportError:
        done = [0, 0]

        def line(n: int) -> None:
            done[0] += n
            if done[0] * 20 // total > done[1]:
                done[1] = done[0] * 20 // total
                log(f"{label}: {done[0]:,}/{total:,} files")

        yield line
        return
    from rich.console import Console

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def add_extra(home: Path, *args: str) -> None:
    cmd, env = _fill_cmd(home, *args)
    subprocess.run(cmd, env=env, check=True, capture_output=True)


# --- CPU of the Rucio server and PostgreSQL ------------------------------------------------------------------------

def _service_processes(home: Path) -> list[psutil.Process]:
    grid = GridHome(home)
    state = grid.load_state()
    bind = f"127.0.0.1:{state.ports.rucio}"
    marker = f"postgres: {state.db_user} {state.db_name} "
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if ("rucio_app" in cmd and bind in cmd) or cmd.startswith(marker):
            found.append(p)
            if "rucio_app" in cmd:
                found.extend(p.children(recursive=True))
    return found


def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return out


@contextmanager
def service_cpu(home: Path) -> Iterator[dict[str, float]]:
    """CPU seconds the Rucio server's processes and the grid database's backends spent inside the block."""
    before = _cpu(_service_processes(home))
    result: dict[str, float] = {}
    yield result
    after = _cpu(_service_processes(home))
    result["cpu_s"] = sum(after[pid] - before.get(pid, 0.0) for pid in after)


# --- the measurements at one size ---------------------------------------------------------------------------------

def database_bytes(home: Path) -> int:
    import psycopg

    state = GridHome(home).load_state()
    with psycopg.connect(state.pg_admin_url) as conn:
        row = conn.execute("SELECT pg_database_size(%s)", (state.db_name,)).fetchone()
    assert row is not None
    return int(row[0])


def daemon_backlog(home: Path) -> dict[str, int]:
    """What Rucio's daemons still have to do: new DIDs for the transmogrifier, DIDs for the judge's re-evaluation,
    RSE counter changes for abacus (housekeeping that falls behind shows here)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    state = GridHome(home).load_state()
    with psycopg.connect(make_conninfo(state.pg_admin_url, dbname=state.db_name)) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM rucio.dids WHERE is_new),"
                           " (SELECT count(*) FROM rucio.updated_dids),"
                           " (SELECT count(*) FROM rucio.updated_rse_counters)").fetchone()
    assert row is not None
    return {"new_dids": int(row[0]), "updated_dids": int(row[1]), "updated_rse_counters": int(row[2])}


INGEST_DAYS = ("20260101", "20260201")  # the days of benchmarks/ingest.py's throughput and latency blocks


def close_ingest_blocks(home: Path) -> list[str]:
    """Close the blocks the ingest measurement left open, as the ingestor does once their day is over (it is:
    they are days of 2026, kept open only by the measurement's `close_quiet` of an hour). Without this, every
    point adds open blocks of 20,000 files that `raw status` and the blocks panel must ask Rucio about, which
    JUNO's grid never has: one open block per stream, today's, of at most about 1,000 files."""
    from juno_dcs.grid.launcher import root_client

    grid = GridHome(home)
    client = root_client(grid, grid.load_state())
    closed = []
    for day in INGEST_DAYS:
        for name in client.list_dids("raw", {"name": f"block.{day}.*"}, did_type="dataset"):
            if client.get_did("raw", name).get("open"):
                client.close("raw", name)
                closed.append(str(name))
    return closed


def ingest_figures(home: Path, messages: int, rate: float, seconds: float, tmp: Path) -> dict[str, Any]:
    with service_cpu(home) as cpu:
        got = ingest.throughput(home, messages, tmp)
    latency = ingest.latency(home, rate, seconds, tmp)
    close_ingest_blocks(home)
    return {"files_per_s": got["files_per_s"], "latency_p99_s": latency["latency_p99_s"],
            "latency_p50_s": latency["latency_p50_s"],
            "server_db_cpu_s_per_1000_files": round(cpu["cpu_s"] / got["registered_files"] * 1000, 3)}


def rule_locks_s(home: Path, tag: str, files: int) -> float:
    """A rule at IHEP_DISK on a fresh `files`-file dataset (its replicas are there): seconds from the rule's
    creation until Rucio has a lock for every file. The rule is removed afterwards."""
    from juno_dcs.grid.launcher import root_client

    add_extra(home, "--big-dataset", tag, "--big-files", str(files))
    grid = GridHome(home)
    client = root_client(grid, grid.load_state())
    name = f"mc.SCALE.{tag}.detsim"
    start = time.perf_counter()
    rule_id = client.add_replication_rule([{"scope": "mc", "name": name}], 1, "IHEP_DISK", lifetime=86400)[0]
    while True:
        rule = client.get_replication_rule(rule_id)
        locks = int(rule["locks_ok_cnt"]) + int(rule["locks_replicating_cnt"]) + int(rule["locks_stuck_cnt"])
        if locks >= files:
            break
        if time.perf_counter() - start > TIMEOUT_S:
            return float("nan")
        time.sleep(0.2)
    took = time.perf_counter() - start
    client.delete_replication_rule(rule_id, purge_replicas=False)
    return round(took, 3)


def policy_apply_s(home: Path, stream: str) -> float | None:
    """`juno-dcs placement apply` of a new 1,000-file raw block; its rules are removed afterwards (no transfers
    of files that have no bytes)."""
    from juno_dcs.grid.launcher import root_client

    add_extra(home, "--new-block", stream)
    name = f"block.{block_day(4000):%Y%m%d}.{stream}"
    took = timed([JUNO_DCS, "placement", "apply", f"raw:{name}", "--home", str(home)], ok=(0, 3))  # 3: the
    # tape rules wait for their disk rules (the policy's `after`)
    grid = GridHome(home)
    client = root_client(grid, grid.load_state())
    for rule in client.list_did_rules("raw", name):
        if rule["locked"]:  # raw data's rules are locked by the policy
            client.update_replication_rule(rule["id"], {"locked": False})
        # a lifetime of one second: the judge-cleaner removes the rule with its locks and transfer requests at once
        # (Rucio's API deletion keeps a rule, and its transfers, for another hour)
        client.update_replication_rule(rule["id"], {"lifetime": 1})
    return took


LIVE_ALL_UP_TO = 1_000_000  # files: beyond, `raw status --live` of every block takes many minutes


def summary_figures(home: Path) -> dict[str, Any]:
    """`juno-dcs raw summarize`: the pass after a fill (every new block asked of Rucio), and a pass with nothing
    due (the collector's cost in the steady state)."""
    out: dict[str, Any] = {}
    for key in ("summary_refresh", "summary_pass"):
        start = time.perf_counter()
        proc = subprocess.run([JUNO_DCS, "raw", "summarize", "--home", str(home), "--json"], capture_output=True,
                              text=True, timeout=3 * TIMEOUT_S, check=True)
        out[f"{key}_s"] = round(time.perf_counter() - start, 3)
        out[f"{key}_blocks"] = json.loads(proc.stdout)["refreshed"]
    return out


def catalogue_point(home: Path, files: int, opts: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Every catalogue figure at this size (the fill already done)."""
    point: dict[str, Any] = {"files": files}
    log(f"{files:,} files: ingest")
    point |= ingest_figures(home, opts["messages"], opts["rate"], opts["seconds"], tmp)
    env = grid_env(home)
    day = block_day(max(0, files // UNIT_FILES * RAW_BLOCKS // 2))
    block = f"raw:block.{day:%Y%m%d}.physics"
    log(f"{files:,} files: the blocks' summary")
    point |= summary_figures(home)
    log(f"{files:,} files: commands")
    point["raw_status_day_s"] = timed([JUNO_DCS, "raw", "status", "--home", str(home), "--day", f"{day:%Y%m%d}"],
                                      runs=3)
    point["raw_status_json_all_s"] = timed([JUNO_DCS, "raw", "status", "--home", str(home), "--json"], runs=3)
    if files <= LIVE_ALL_UP_TO:  # every block asked of Rucio: the cost the summary saves
        point["raw_status_json_all_live_s"] = timed([JUNO_DCS, "raw", "status", "--home", str(home), "--json",
                                                     "--live"])
    new = f"n{uuid.uuid4().hex[:8]}"  # a stream of its own: a new block at every point, on any grid
    point["policy_apply_block_s"] = policy_apply_s(home, new)
    point["rule_10k_locks_s"] = rule_locks_s(home, f"rule{uuid.uuid4().hex[:8]}", opts["rule_files"])
    if not files:  # nothing in the empty catalogue to list: the new block stands in
        block = f"raw:block.{block_day(4000):%Y%m%d}.{new}"
    point["list_dataset_replicas_s"] = timed(["rucio", "replica", "list", "dataset", block], env, runs=3)
    point["list_file_replicas_s"] = timed(["rucio", "replica", "list", "file", block], env, runs=3)
    log(f"{files:,} files: dashboard")
    dashboard = GridHome(home).load_state().ports.url("dashboard")
    time.sleep(11)  # past the dashboard's 10 s cache: the first GET computes
    point["dashboard_blocks_s"] = http_get_s(f"{dashboard}/api/blocks", runs=1)
    point["dashboard_stuck_rules_s"] = http_get_s(f"{dashboard}/api/stuck-rules", runs=1)
    point["daemon_backlog"] = daemon_backlog(home)
    size = database_bytes(home)
    point["database_bytes"] = size
    point["database_bytes_per_million_files"] = round(size / files * 1e6) if files else None
    point["measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return point
