"""Benchmark: the catalogue and the dispatcher at JUNO's scale (4 million files, 2 million jobs).

Catalogue: a grid's Rucio catalogue is filled step by step (`--points`, default 0,1000000,2000000,4000000 files) in
JUNO's shape (benchmarks/scale_shape.py: raw daily blocks of 1,000 files, MC productions, user datasets; sizes and
adler32 only, no bytes) through Rucio's own core code in-process with the grid's server configuration
(benchmarks/scale_fill.py; the fill rate is reported). With `--fill copy` (the default), Rucio registers the first
unit and the others are copies of its rows written by COPY (benchmarks/scale_load.py): the same rows, about 15 times
faster: 4 million files in minutes, not hours. At each point (benchmarks/scale_catalogue.py):
    files_per_s, latency_p99_s        the ingestor (benchmarks/ingest.py): --messages at once, then a steady rate
    server_db_cpu_s_per_1000_files    CPU seconds of the Rucio server's processes and the grid database's backends
                                      per 1,000 files of that ingest
    raw_status_day_s, raw_status_json_all_s   `juno-dcs raw status --day D` and `--json` (every block)
    policy_apply_block_s              `juno-dcs placement apply` of a new 1,000-file block
    rule_10k_locks_s                  a rule on a 10,000-file dataset until Rucio has all its locks
    list_dataset_replicas_s, list_file_replicas_s   `rucio replica list dataset|file` of a 1,000-file block
    dashboard_blocks_s, dashboard_stuck_rules_s     GET of the dashboard's /api/blocks and /api/stuck-rules
    database_bytes(_per_million_files)              pg_database_size of the grid's database
    daemon_backlog                    new DIDs, judge re-evaluations, RSE counter changes still queued for Rucio's
                                      daemons at the end of the point
Dispatcher (benchmarks/scale_jobs.py): with `--jobs-points` (default 0,2000000) past jobs in its tables,
submit_10k_s, getjob_per_s, jsub_status_10k_s, prod_status_s.
Command times are medians of 3 runs where marked in the code; the machine is shared, so every figure is noisy.
Writes benchmarks/results/scale.json and the plots docs/images/scale-*.png; prints the JSON.

    .venv/bin/python benchmarks/scale.py [--points 0,50000] [--jobs-points 0,20000] [--home GRID]
                                         [--messages 20000] [--rate 100] [--seconds 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import stamp
from benchmarks.scale_aims import aim_texts, aims, largest
from benchmarks.scale_catalogue import catalogue_point, fill, log
from benchmarks.scale_plots import plot_all
from tests.conftest import JUNO_DCS, free_base_port

ROOT = Path(__file__).resolve().parents[1]


def user_scopes(home: Path) -> list[str]:
    from juno_dcs.grid.home import GridHome
    from juno_dcs.grid.launcher import root_client

    grid = GridHome(home)
    scopes = sorted(s for s in root_client(grid, grid.load_state()).list_scopes() if s.startswith("user."))
    if not scopes:
        raise SystemExit("the grid has no user.<account> scope")
    return scopes


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def run(args: argparse.Namespace, home: Path, tmp: Path, out: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "scale", "points": [], "jobs_points": [],
                              "settings": {"messages": args.messages, "rate": args.rate, "seconds": args.seconds,
                                           "fill_workers": args.workers, "rule_files": args.rule_files}}
    opts = {"messages": args.messages, "rate": args.rate, "seconds": args.seconds, "rule_files": args.rule_files}
    if ints(args.jobs_points):  # first: bounded in time, whatever the catalogue's points take
        from benchmarks.scale_jobs import jobs_point

        for jobs in ints(args.jobs_points):
            log(f"the dispatcher with {jobs:,} jobs")
            try:
                result["jobs_points"].append(jobs_point(jobs))
            except Exception as exc:  # the catalogue's points still run; the failure is in the results
                result.setdefault("errors", []).append(f"jobs point {jobs}: {exc!r}")
                log(f"jobs point {jobs} failed: {exc!r}")
                continue
            log(json.dumps(result["jobs_points"][-1]))
            _save(result, out)
    scopes = user_scopes(home)
    filled = 0
    for files in ints(args.points):
        log(f"filling the catalogue to {files:,} files")
        rate = fill(home, filled, files, args.workers, scopes, args.fill)
        filled = files
        point = catalogue_point(home, files, opts, tmp)
        point |= rate
        result["points"].append(point)
        log(json.dumps(point))
        _save(result, out)
    _save(result, out)
    return result


def _save(result: dict[str, Any], out: Path) -> None:
    """Write the results, merged with the file's by size: a point this run measured replaces the file's point of
    that size, the file's other points stay (so the two sides, or a catalogue grown further later, can run as
    several invocations, at once or one after the other)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        before = json.loads(out.read_text())
        for side, size in (("points", "files"), ("jobs_points", "jobs")):
            mine = {p[size]: p for p in result[side]}
            kept = [p for p in before.get(side, []) if p[size] not in mine]
            result[side] = sorted(kept + list(mine.values()), key=lambda p: p[size])
    result["aims_checked"] = aims(result["points"], result["jobs_points"])
    result["aims"] = aim_texts()
    result["largest"] = largest(result["points"], result["jobs_points"])
    out.write_text(json.dumps(stamp(dict(result)), indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", default="0,1000000,2000000,4000000", help="catalogue sizes in files")
    parser.add_argument("--jobs-points", default="0,2000000", help="past jobs in the dispatcher's tables")
    parser.add_argument("--home", type=Path, default=None, help="A running grid (default: start one).")
    parser.add_argument("--messages", type=int, default=20_000, help="ingest throughput messages per point")
    parser.add_argument("--rate", type=float, default=100.0, help="ingest latency: messages per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="ingest latency: seconds of publishing")
    parser.add_argument("--rule-files", type=int, default=10_000, help="files of the dataset the rule is on")
    parser.add_argument("--workers", type=int, default=2, help="fill processes")
    parser.add_argument("--fill", choices=("api", "copy"), default="copy",
                        help="api: every unit through Rucio's bulk route (about 600 files/s here); copy: Rucio "
                             "registers one unit, COPY writes the others as its rows (benchmarks/scale_load.py)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--plots-only", action="store_true", help="Only draw the plots of the results file.")
    args = parser.parse_args()
    if args.plots_only:
        for path in plot_all(json.loads(args.out.read_text()), args.images):
            print(path)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="juno-bench-scale-"))
    tmp.chmod(0o755)
    home = args.home or tmp / "grid"
    started = time.monotonic()
    try:
        if args.home is None:
            subprocess.run([JUNO_DCS, "up", "--home", str(home), "--base-port", str(free_base_port())],
                           check=True, capture_output=True)
        result = run(args, home, tmp, args.out)
    finally:
        if args.home is None:
            subprocess.run([JUNO_DCS, "down", "--purge", "--home", str(home)], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    result["wall_s"] = round(time.monotonic() - started, 1)
    _save(result, args.out)
    saved = json.loads(args.out.read_text())
    saved["plots"] = [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)
                      for p in plot_all(saved, args.images)]
    args.out.write_text(json.dumps(saved, indent=2) + "\n")
    print(json.dumps(saved, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
