"""Benchmark: how long a grid takes to come up, to re-apply, to stop, and how much memory it holds.

Runs N cycles (default 3) on fresh homes and free ports: cold `up` (new database, schema bootstrap,
topology), warm `up` (nothing to change), `status`, `down`, `up` of the stopped grid, `down --purge`.
Prints one JSON object with the median and every sample of each figure.

    .venv/bin/python benchmarks/grid_up.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import stamp
from tests.conftest import JUNO_DCS, free_base_port


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{cmd} failed with {proc.returncode}: {proc.stderr}")
    return elapsed, proc.stdout


def grid_rss_mib(home: Path) -> dict[str, float]:
    """Resident memory of every process under the grid's supervisord, by program (MiB)."""
    pid = int((home / "run" / "supervisord.pid").read_text())
    sup = psutil.Process(pid)
    by_program: dict[str, float] = {"supervisord": sup.memory_info().rss / 2**20}
    for child in sup.children():
        name = Path(child.cmdline()[0]).name if child.cmdline() else child.name()
        if name in {"python3", "python"} and len(child.cmdline()) > 1:
            name = Path(child.cmdline()[1]).name
        total = child.memory_info().rss + sum(c.memory_info().rss for c in child.children(recursive=True))
        by_program[name] = by_program.get(name, 0.0) + total / 2**20
    return by_program


def one_run(root: Path, index: int) -> dict[str, Any]:
    home = root / f"bench{index}"
    base = free_base_port()
    args = ["--home", str(home)]
    sample: dict[str, Any] = {}
    sample["up_cold_s"], _ = timed([JUNO_DCS, "up", *args, "--base-port", str(base)])
    time.sleep(15)  # let the daemons finish their start-up before weighing them
    rss = grid_rss_mib(home)
    sample["rss_total_mib"] = sum(rss.values())
    sample["rss_by_program_mib"] = {k: round(v, 1) for k, v in sorted(rss.items())}
    sample["up_warm_s"], out = timed([JUNO_DCS, "up", *args])
    assert "topology: 0 change(s)" in out, out
    sample["status_s"], _ = timed([JUNO_DCS, "status", "--json", *args], ok=(0, 1))
    sample["down_s"], _ = timed([JUNO_DCS, "down", *args])
    sample["up_stopped_s"], _ = timed([JUNO_DCS, "up", *args])
    sample["down_purge_s"], _ = timed([JUNO_DCS, "down", "--purge", *args])
    return sample


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="juno-bench-") as tmp:
        Path(tmp).chmod(0o755)  # the xrootd user must reach the grid homes inside
        samples = [one_run(Path(tmp), i) for i in range(runs)]
    keys = ["up_cold_s", "up_warm_s", "status_s", "down_s", "up_stopped_s", "down_purge_s", "rss_total_mib"]
    result = {
        "benchmark": "grid_up",
        "runs": runs,
        "cpus": psutil.cpu_count(),
        "median": {k: round(statistics.median(s[k] for s in samples), 2) for k in keys},
        "samples": {k: [round(s[k], 2) for s in samples] for k in keys},
        "rss_by_program_mib_last_run": samples[-1]["rss_by_program_mib"],
    }
    print(json.dumps(stamp(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
