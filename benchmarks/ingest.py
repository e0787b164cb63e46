"""Benchmark: the raw-data ingestor on the grid's Kafka 0.9 and Rucio on PostgreSQL.

1. Throughput: N messages (default 100,000) waiting in a fresh 3-partition topic, then one ingestor instance
   (`juno-dcs ingest run --run-once`) registers and attaches them all: `files_per_s` = N / (seconds from the
   ingestor's start to its last registration), checked against the blocks' lengths in Rucio.
2. Latency: an ingestor running continuously while messages are published at a steady rate (default 100/s for
   60 s): for every file, publish -> registered-and-attached (the ingestor's journal): `latency_p50_s`,
   `latency_p99_s`.
The messages are valid SPADE messages for files that were not written (the ingestor's SE check is off and no
rules are placed: what is measured is Kafka -> Rucio registration, not transfers).
3. What tokens cost ingest: the same with each file written first and checked at the SE (size and adler32 over
   root://) before it is registered, the only part of ingest that carries a token: at IHEP_DISK with the raw-data
   service's token, and at an SE that checks nothing without one (benchmarks/open_side.py), run by run
   alternately: `checked_files_per_s_tokens_on`/`_off` (medians), `checked_token_cost` = 1 - on/off (aim: <= 0.10).
Starts its own grid under a temporary home (or uses --home of a running one) and prints one JSON object.

    .venv/bin/python benchmarks/ingest.py [--messages 100000] [--rate 100] [--seconds 60] [--home DIR]
                                          [--checked 5000] [--checked-runs 3] [--only tokens]
"""

from __future__ import annotations

import argparse
import datetime as dt
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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import stamp
from tests.conftest import JUNO_DCS, free_base_port

from juno_dcs.grid.home import GridHome
from juno_dcs.grid.kafka import ensure_topics, kafka_settings
from juno_dcs.ingest.message import FileArrived
from juno_rucio_policy.naming import raw_file_name
from juno_rucio_policy.paths import path_for

FILES_PER_RUN = 1000


def message(stream: str, index: int, day: dt.date, per_day: int, content: bytes | None = None) -> FileArrived:
    """A SPADE message; with `content`, for a file that holds it (its size and adler32), else for none."""
    run = 100000 + index // FILES_PER_RUN
    name = raw_file_name(run, stream, index % FILES_PER_RUN, day)
    received = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(seconds=(index % per_day) * 86400
                                                                                  / per_day)
    size, adler32 = (1_000_000 + index, index) if content is None else (len(content), zlib.adler32(content))
    return FileArrived(version=1, spade_id=f"bench-{index}", name=name, size=size,
                       adler32=f"{adler32 & 0xFFFFFFFF:08x}", location=f"davs://localhost:1/{path_for('raw', name)}",
                       run=run, stream=stream, received_at=received)


TUNING: dict[str, int] = {}  # ingestor settings from the command line (--register-threads, --batch-size)


def write_config(home: Path, path: Path, topic: str, group: str, journal: Path,
                 check_at: str | None = None, token: bool = False) -> None:
    """The ingestor's configuration; `check_at`: the RSE where each file is checked (and registered) first,
    with the raw-data service's token when `token`."""
    state = GridHome(home).load_state()
    kafka = kafka_settings(state)
    checks: dict[str, Any] = {}
    if check_at is not None:
        checks = {"verify_at_se": True}
        if token:
            checks["storage_token"] = yaml.safe_load((home / "etc" / "ingest.yaml").read_text())["storage_token"]
    path.write_text(json.dumps({
        "kafka": {"bootstrap_servers": kafka.bootstrap_servers, "api_version": list(kafka.api_version or ())},
        "topic": topic, "dead_letter_topic": f"{topic}.dead", "group_id": group,
        "rucio": {"config": str(home / "etc" / "clients" / "rawdata.cfg"), "rse": check_at or "IHEP_DISK"},
        "apply_rules": False, "close_grace": 0, "close_quiet": 3600, "journal": str(journal), **TUNING, **checks,
    }))


def journal_times(journal: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    for line in journal.read_text().splitlines():
        entry = json.loads(line)
        times.setdefault(entry["name"], entry["at"])  # the first registration (a replay only repeats it)
    return times


def throughput(home: Path, count: int, workdir: Path) -> dict[str, Any]:
    state = GridHome(home).load_state()
    topic, stream = f"bench.{uuid.uuid4().hex[:8]}", "b" + uuid.uuid4().hex[:7]
    ensure_topics(GridHome(home), state, {topic: 3, f"{topic}.dead": 1})
    producer = kafka_settings(state).producer(linger_ms=20, batch_size=256 * 1024)
    days = max(1, count // 20000)
    started = time.monotonic()
    for i in range(count):
        m = message(stream, i, dt.date(2026, 1, 1) + dt.timedelta(days=i * days // count), -(-count // days))
        producer.send(topic, key=m.name.encode(), value=m.to_json())
    producer.flush()
    producer.close()
    publish_s = time.monotonic() - started
    config, journal = workdir / "throughput.yaml", workdir / "throughput.jsonl"
    write_config(home, config, topic, f"bench-{uuid.uuid4().hex[:6]}", journal)
    begin = time.time()
    proc = subprocess.run([JUNO_DCS, "ingest", "run", "--config", str(config), "--run-once"], capture_output=True,
                          text=True, check=True)
    metrics = json.loads(proc.stdout)
    times = journal_times(journal)
    elapsed = max(times.values()) - begin
    in_rucio = rucio_files(home, stream)
    return {"messages": count, "publish_s": round(publish_s, 1), "files_per_s": round(len(times) / elapsed, 1),
            "ingest_s": round(elapsed, 1), "registered_files": len(times), "files_in_rucio_blocks": in_rucio,
            "batches": metrics["batches"], "blocks": days}


def checked(home: Path, count: int, workdir: Path, rse: str, token: bool) -> float:
    """files_per_s of `count` files written at `rse`, each checked there by the ingestor (with the raw-data
    service's token when `token`) before it is registered."""
    state = GridHome(home).load_state()
    topic, stream = f"bench.{uuid.uuid4().hex[:8]}", "c" + uuid.uuid4().hex[:7]
    ensure_topics(GridHome(home), state, {topic: 3, f"{topic}.dead": 1})
    root = GridHome(home).rse_dir(rse)
    producer = kafka_settings(state).producer(linger_ms=20, batch_size=256 * 1024)
    for i in range(count):
        content = os.urandom(1000)
        m = message(stream, i, dt.date(2026, 3, 1), count, content)
        target = root / path_for("raw", m.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        producer.send(topic, key=m.name.encode(), value=m.to_json())
    producer.flush()
    producer.close()
    subprocess.run(["chown", "-R", "xrootd:xrootd", str(root / "raw")], check=True)
    config, journal = workdir / f"checked-{stream}.yaml", workdir / f"checked-{stream}.jsonl"
    write_config(home, config, topic, f"bench-{uuid.uuid4().hex[:6]}", journal, rse, token)
    begin = time.time()
    subprocess.run([JUNO_DCS, "ingest", "run", "--config", str(config), "--run-once"], capture_output=True,
                   text=True, check=True)
    times = journal_times(journal)
    if len(times) != count:
        raise SystemExit(f"{count - len(times)} of {count} checked files were not registered (at {rse})")
    return len(times) / (max(times.values()) - begin)


def token_pair(home: Path, count: int, runs: int, workdir: Path) -> dict[str, Any]:
    """The check at the SE with tokens (IHEP_DISK, the raw-data service's token) and without (an SE that checks
    nothing: benchmarks/open_side.py), run by run alternately, the order swapped each run."""
    from benchmarks.open_side import SOURCE, alternate, open_side, pair_figures

    samples: dict[str, list[float]] = {"on": [], "off": []}
    with open_side(home):
        for _, mode in alternate(runs):
            rse = "IHEP_DISK" if mode == "on" else SOURCE
            samples[mode].append(checked(home, count, workdir, rse, token=mode == "on"))
    return {**pair_figures("checked_files_per_s", "checked_token_cost", samples), "checked_messages": count,
            "checked_runs": runs}


def rucio_files(home: Path, stream: str) -> int:
    os.environ["RUCIO_CONFIG"] = str(home / "etc" / "clients" / "root.cfg")
    from rucio.client import Client

    client = Client(account="root")
    return sum(int(client.get_did("raw", name, dynamic_depth="FILE")["length"] or 0)
               for name in client.list_dids("raw", {"name": f"block.*.{stream}"}, did_type="dataset"))


def latency(home: Path, rate: float, seconds: float, workdir: Path) -> dict[str, Any]:
    state = GridHome(home).load_state()
    topic, stream = f"bench.{uuid.uuid4().hex[:8]}", "l" + uuid.uuid4().hex[:7]
    ensure_topics(GridHome(home), state, {topic: 3, f"{topic}.dead": 1})
    config, journal = workdir / "latency.yaml", workdir / "latency.jsonl"
    write_config(home, config, topic, f"bench-{uuid.uuid4().hex[:6]}", journal)
    ingestor = subprocess.Popen([JUNO_DCS, "ingest", "run", "--config", str(config)], stderr=subprocess.DEVNULL)
    producer = kafka_settings(state).producer()
    producer.send(topic, value=b"warm-up: joins the group before timing starts").get(timeout=30)
    time.sleep(15)
    published: dict[str, float] = {}
    total = int(rate * seconds)
    start = time.monotonic()
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        m = message(stream, i, dt.date(2026, 2, 1), total)
        producer.send(topic, key=m.name.encode(), value=m.to_json())
        producer.flush()
        published[m.name] = time.time()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists() and len(journal_times(journal)) >= total:
            break
        time.sleep(1)
    ingestor.terminate()
    ingestor.wait(60)
    producer.close()
    times = journal_times(journal)
    lat = sorted(times[name] - at for name, at in published.items() if name in times)
    return {"rate_per_s": rate, "seconds": seconds, "published": total, "registered": len(lat),
            "latency_p50_s": round(statistics.median(lat), 3),
            "latency_p99_s": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 3),
            "latency_max_s": round(lat[-1], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--home", type=Path, default=None, help="A running grid (default: start one).")
    parser.add_argument("--register-threads", type=int, default=None, help="The ingestor's register_threads.")
    parser.add_argument("--batch-size", type=int, default=None, help="The ingestor's batch_size.")
    parser.add_argument("--verify-threads", type=int, default=None, help="The ingestor's verify_threads.")
    parser.add_argument("--checked", type=int, default=5000, help="messages of each run of the tokens on/off pair "
                        "(files checked at the SE); 0: no pair")
    parser.add_argument("--checked-runs", type=int, default=3, help="runs on each side of the tokens on/off pair")
    parser.add_argument("--only", choices=("tokens",), default=None, help="only the tokens on/off pair")
    args = parser.parse_args()
    TUNING.update({k: v for k, v in (("register_threads", args.register_threads), ("batch_size", args.batch_size))
                   if v is not None})
    if args.verify_threads is not None:
        TUNING["verify_threads"] = args.verify_threads
    tmp = Path(tempfile.mkdtemp(prefix="juno-bench-ingest-"))
    tmp.chmod(0o755)
    home = args.home or tmp / "grid"
    own = args.home is None
    try:
        if own:
            subprocess.run([JUNO_DCS, "up", "--home", str(home), "--base-port", str(free_base_port())],
                           check=True, capture_output=True)
        result: dict[str, Any] = {"benchmark": "ingest", "tuning": TUNING}
        if args.only is None:
            result["throughput"] = throughput(home, args.messages, tmp)
            result["latency"] = latency(home, args.rate, args.seconds, tmp)
            result["files_per_s"] = result["throughput"]["files_per_s"]
            result["latency_p50_s"] = result["latency"]["latency_p50_s"]
            result["latency_p99_s"] = result["latency"]["latency_p99_s"]
        if args.checked:
            result |= token_pair(home, args.checked, args.checked_runs, tmp)
        print(json.dumps(stamp(result), indent=2))
    finally:
        if own:
            subprocess.run([JUNO_DCS, "down", "--purge", "--home", str(home)], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
