"""Benchmark: the JUNO DCS paper's first data challenge, scaled to one machine: `juno-dcs challenge --json` in
both modes (parallel, then each), the two results under `parallel` and `each`.

    .venv/bin/python benchmarks/challenge.py [--home DIR] [--files 20] [--size 100MB] [--modes parallel,each]
                                             [--checksums both|target|none]

Starts its own grid under a temporary home (or uses --home of a running one) and prints one JSON object.

`--checksums` is a diagnostic of where the difference to the bare copies goes. Rucio's default, and the grid's, is
`both`: each copy's adler32 is read at the source and at the destination and compared with the catalogue's. For the
run, `target` gives the source Rucio's RSE attribute `verify_checksum: false` (the conveyor then asks the transfer
service to check the destination against the catalogue only), `none` gives it to the source and the three T1 disks
(nothing is checked); the attribute is taken away afterwards. The bare copies verify nothing either way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import stamp
from tests.conftest import JUNO_DCS, free_base_port

from juno_dcs.challenge.run import DESTINATIONS, SOURCE


def challenge(home: Path, mode: str, files: int, size: str) -> dict[str, Any]:
    proc = subprocess.run([JUNO_DCS, "challenge", "--home", str(home), "--mode", mode, "--files", str(files),
                           "--size", size, "--json"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"juno-dcs challenge --mode {mode} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@contextlib.contextmanager
def checksums(home: Path, verify: str) -> Iterator[None]:
    """Rucio's `verify_checksum` RSE attribute off for the run: on the source (`target`), on the source and the
    destinations (`none`); nothing for `both`."""
    if verify == "both":
        yield
        return
    from juno_dcs.grid import cache
    from juno_dcs.grid.clients import root_client
    from juno_dcs.grid.home import GridHome
    from juno_dcs.grid.runners import runner_for

    grid = GridHome(home)
    state = grid.load_state()
    client = root_client(grid, state)
    rses = (SOURCE, *DESTINATIONS) if verify == "none" else (SOURCE,)
    # the conveyor-submitter reads RSE attributes through Rucio's cache and keeps its topology 5 minutes: both are
    # renewed after each change
    runner = runner_for(grid, state)
    for rse in rses:
        client.add_rse_attribute(rse, "verify_checksum", False)
    cache.flush(grid)
    runner.restart_program("rucio-conveyor-submitter")
    try:
        yield
    finally:
        for rse in rses:
            client.delete_rse_attribute(rse, "verify_checksum")
        cache.flush(grid)
        runner.restart_program("rucio-conveyor-submitter")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=None, help="a running grid to use (default: a new one)")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--size", default="100MB")
    parser.add_argument("--modes", default="parallel,each", help="comma-separated: parallel, each")
    parser.add_argument("--checksums", choices=("both", "target", "none"), default="both",
                        help="what the copies through Rucio verify (a diagnostic, see above)")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - {"parallel", "each"}:
        parser.error(f"--modes {args.modes!r}: comma-separated parallel and each")
    own = args.home is None
    tmp = Path(tempfile.mkdtemp(prefix="juno-bench-"))
    tmp.chmod(0o755)
    home = args.home or tmp / "grid"
    try:
        if own:
            subprocess.run([JUNO_DCS, "up", "--home", str(home), "--base-port", str(free_base_port())], check=True,
                           capture_output=True)
        result: dict[str, Any] = {"benchmark": "challenge", "checksums": args.checksums, "load_avg_1m_before": {}}
        with checksums(home, args.checksums):
            for mode in modes:
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
