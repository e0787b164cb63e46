"""Benchmark: a grid left running under ingest keeps its figures (days of JUNO's raw data, compressed).

On a running grid (`--home`, for example one that benchmarks/scale.py filled to 4 million files), one ingestor runs
continuously while SPADE messages are published at a steady `--rate` for `--minutes`; every `--per-day` messages
start a new day, so the ingestor opens a daily block, and closes the one before once it is quiet for a minute
(as JUNO's 1,000 raw files a day, many days over). Every `--window` minutes the benchmark records:

    latency_p50_s, latency_p99_s   publish -> registered and attached (the ingestor's journal), for the messages
                                   published in that window
    raw_status_day_s               `juno-dcs raw status --day D` of the day being filled (median of 3)
    dashboard_blocks_s             GET of the dashboard's /api/blocks after its cache expired
    daemon_backlog                 what Rucio's daemons still have queued (benchmarks/scale_catalogue.py)
    database_bytes                 the grid's database
    grid_rss_bytes                 the resident memory of the grid's processes (the supervisor's descendants)
    tables                         the size of every table of the grid's database

and at the end, per day of running (extrapolated from the run): the database's growth, the tables that grew most,
and the memory's growth; and whether the last window's figures stayed within 20 % (or 0.2 s) of the first's.
The files have no bytes and no rules are placed: this measures the catalogue's and the services' housekeeping
under ingest, not transfers. Writes benchmarks/results/soak.json; prints the JSON.

    .venv/bin/python benchmarks/soak.py --home GRID [--minutes 30] [--window 5] [--rate 2] [--per-day 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import ingest
from benchmarks.machine import stamp
from benchmarks.scale_catalogue import daemon_backlog, database_bytes, http_get_s, log, timed
from tests.conftest import JUNO_DCS

from juno_dcs.grid.home import GridHome
from juno_dcs.grid.kafka import ensure_topics, kafka_settings

ROOT = Path(__file__).resolve().parents[1]
FIRST_DAY = dt.date(2026, 1, 1)  # past days: the ingestor closes a day's block once it is quiet
TOLERANCE, SLACK_S = 0.20, 0.2


def table_bytes(home: Path) -> dict[str, int]:
    import psycopg
    from psycopg.conninfo import make_conninfo

    state = GridHome(home).load_state()
    with psycopg.connect(make_conninfo(state.pg_admin_url, dbname=state.db_name)) as conn:
        rows = conn.execute("SELECT n.nspname || '.' || c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
                            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
                            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')").fetchall()
    return {str(name): int(size) for name, size in rows}


def grid_rss(home: Path) -> int:
    """Resident bytes of the grid's supervisor and everything under it."""
    pid_file = home / "run" / "supervisord.pid"
    try:
        top = psutil.Process(int(pid_file.read_text().split()[0]))
        procs = [top, *top.children(recursive=True)]
    except (OSError, ValueError, psutil.Error):
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


class Publisher(threading.Thread):
    """SPADE messages at `rate` per second until stopped, `per_day` to a day; remembers when each went out."""

    def __init__(self, home: Path, topic: str, stream: str, rate: float, per_day: int) -> None:
        super().__init__(daemon=True)
        self.home, self.topic, self.stream, self.rate, self.per_day = home, topic, stream, rate, per_day
        self.published: dict[str, float] = {}
        self.stop = threading.Event()
        self.sent = 0

    def day(self) -> dt.date:
        return FIRST_DAY + dt.timedelta(days=self.sent // self.per_day)

    def run(self) -> None:
        producer = kafka_settings(GridHome(self.home).load_state()).producer()
        start = time.monotonic()
        while not self.stop.is_set():
            delay = start + self.sent / self.rate - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            m = ingest.message(self.stream, self.sent, self.day(), self.per_day)
            producer.send(self.topic, key=m.name.encode(), value=m.to_json())
            producer.flush()
            self.published[m.name] = time.time()
            self.sent += 1
        producer.close()


def _latency(published: dict[str, float], journal: Path, since: float, until: float) -> dict[str, Any]:
    times = ingest.journal_times(journal) if journal.exists() else {}
    mine = [(at, times.get(name)) for name, at in published.items() if since <= at < until]
    lat = sorted(done - at for at, done in mine if done is not None)
    if not lat:
        return {"published": len(mine), "registered": 0, "latency_p50_s": None, "latency_p99_s": None}
    return {"published": len(mine), "registered": len(lat), "latency_p50_s": round(statistics.median(lat), 3),
            "latency_p99_s": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 3)}


def window_figures(home: Path, pub: Publisher, journal: Path, since: float, until: float) -> dict[str, Any]:
    time.sleep(5)  # the window's last messages registered
    point: dict[str, Any] = {"minute": None, **_latency(dict(pub.published), journal, since, until)}
    point["raw_status_day_s"] = timed([JUNO_DCS, "raw", "status", "--home", str(home), "--day",
                                       f"{pub.day():%Y%m%d}"], runs=3)
    dashboard = GridHome(home).load_state().ports.url("dashboard")
    point["dashboard_blocks_s"] = http_get_s(f"{dashboard}/api/blocks", runs=1)
    point["daemon_backlog"] = daemon_backlog(home)
    point["database_bytes"] = database_bytes(home)
    point["grid_rss_bytes"] = grid_rss(home)
    point["tables"] = table_bytes(home)
    return point


def _held(first: float | None, last: float | None) -> bool | None:
    if first is None or last is None:
        return None
    return last <= max(first * (1 + TOLERANCE), first + SLACK_S)


def verdict(windows: list[dict[str, Any]], hours: float, per_juno_day: int = 1000) -> dict[str, Any]:
    """Growth per day of running and per JUNO day (`per_juno_day` raw files registered), and whether the figures
    held, from the first window to the last."""
    first, last = windows[0], windows[-1]
    juno_days = sum(int(w.get("registered") or 0) for w in windows[1:]) / per_juno_day
    per_day = 24 / hours if hours else 0.0
    grew = {t: last["tables"].get(t, 0) - first["tables"].get(t, 0) for t in last["tables"]}
    top = sorted(((t, g) for t, g in grew.items() if g > 0), key=lambda x: -x[1])[:10]
    shown = ("latency_p99_s", "raw_status_day_s", "dashboard_blocks_s")
    return {
        "first": {k: first.get(k) for k in shown}, "last": {k: last.get(k) for k in shown},
        "database_bytes_per_day": round((last["database_bytes"] - first["database_bytes"]) * per_day),
        "grid_rss_bytes_per_day": round((last["grid_rss_bytes"] - first["grid_rss_bytes"]) * per_day),
        "database_bytes_per_juno_day": (round((last["database_bytes"] - first["database_bytes"]) / juno_days)
                                        if juno_days else None),
        "grid_rss_bytes_change": last["grid_rss_bytes"] - first["grid_rss_bytes"],
        "tables_bytes_per_day": {t: round(g * per_day) for t, g in top},
        "held": {k: _held(first.get(k), last.get(k)) for k in shown},
    }


def run(home: Path, minutes: float, window: float, rate: float, per_day: int, tmp: Path) -> dict[str, Any]:
    state = GridHome(home).load_state()
    topic, stream = f"soak.{uuid.uuid4().hex[:8]}", "s" + uuid.uuid4().hex[:7]
    ensure_topics(GridHome(home), state, {topic: 3, f"{topic}.dead": 1})
    config, journal = tmp / "soak.yaml", tmp / "soak.jsonl"
    ingest.write_config(home, config, topic, f"soak-{uuid.uuid4().hex[:6]}", journal)
    settings = json.loads(config.read_text())
    config.write_text(json.dumps(settings | {"close_quiet": 60}))
    ingestor = subprocess.Popen([JUNO_DCS, "ingest", "run", "--config", str(config)], stderr=subprocess.DEVNULL)
    pub = Publisher(home, topic, stream, rate, per_day)
    windows: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        time.sleep(15)  # the ingestor joins its group
        pub.start()
        since = time.time()
        while time.monotonic() - started < minutes * 60:
            time.sleep(max(0.0, min(window * 60, minutes * 60 - (time.monotonic() - started))))
            until = time.time()
            point = window_figures(home, pub, journal, since, until)
            point["minute"] = round((time.monotonic() - started) / 60, 1)
            windows.append(point)
            log(json.dumps({k: v for k, v in point.items() if k != "tables"}))
            since = until
    finally:
        pub.stop.set()
        pub.join(30)
        ingestor.terminate()
        ingestor.wait(60)
    hours = (windows[-1]["minute"] - windows[0]["minute"]) / 60 if len(windows) > 1 else 0.0
    return {"benchmark": "soak", "settings": {"minutes": minutes, "window_minutes": window, "rate_per_s": rate,
                                              "per_day": per_day},
            "published": pub.sent, "days_of_raw_data": round(pub.sent / per_day, 2),
            "windows": windows, **(verdict(windows, hours, per_day) if hours else {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True, help="A running grid.")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=5.0, help="minutes between measurements")
    parser.add_argument("--rate", type=float, default=2.0, help="messages per second")
    parser.add_argument("--per-day", type=int, default=1000, help="messages to a day (a daily block)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "soak.json")
    args = parser.parse_args()
    if args.window > args.minutes or args.rate <= 0 or args.per_day < 1:
        parser.error("--window must not exceed --minutes; --rate and --per-day must be positive")
    with tempfile.TemporaryDirectory(prefix="juno-bench-soak-") as tmp:
        Path(tmp).chmod(0o755)
        result = run(args.home, args.minutes, args.window, args.rate, args.per_day, Path(tmp))
    result = stamp(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
