"""Benchmark: the JUNO DCS paper's first data challenge, scaled to one machine: `juno-dcs challenge --json` in
both modes (parallel, then each), the two results under `parallel` and `each`.

    .venv/bin/python benchmarks/challenge.py [--home DIR] [--files 20] [--size 100MB]

Starts its own grid under a temporary home (or uses --home of a running one) and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import stamp
from tests.conftest import JUNO_DCS, free_base_port


def challenge(home: Path, mode: str, files: int, size: str) -> dict[str, Any]:
    proc = subprocess.run([JUNO_DCS, "challenge", "--home", str(home), "--mode", mode, "--files", str(files),
                           "--size", size, "--json"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"juno-dcs challenge --mode {mode} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=None, help="a running grid to use (default: a new one)")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--size", default="100MB")
    args = parser.parse_args()
    own = args.home is None
    tmp = Path(tempfile.mkdtemp(prefix="juno-bench-"))
    tmp.chmod(0o755)
    home = args.home or tmp / "grid"
    try:
        if own:
            subprocess.run([JUNO_DCS, "up", "--home", str(home), "--base-port", str(free_base_port())], check=True,
                           capture_output=True)
        result: dict[str, Any] = {"benchmark": "challenge", "load_avg_1m_before": {}}
        for mode in ("parallel", "each"):
            result["load_avg_1m_before"][mode] = round(os.getloadavg()[0], 2)  # a shared machine shows here
            result[mode] = challenge(home, mode, args.files, args.size)
        print(json.dumps(stamp(result), indent=2))
    finally:
        if own:
            subprocess.run([JUNO_DCS, "down", "--purge", "--home", str(home)], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
