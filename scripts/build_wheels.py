"""Build the wheels of the three distributions (`make wheels`; the wheel tests build with it too).

    python scripts/build_wheels.py OUTDIR [daemons policy probes]

Each distribution is copied to a temporary directory first (without build/, *.egg-info and __pycache__), so
leftovers of an earlier build or of the editable install never slip into a wheel, and two builds at once do
not share a build/ directory. pip builds it with --no-deps in an isolated build environment (setuptools from
the package index pip is configured with).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = ("policy", "daemons", "probes")
LEFTOVERS = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.pyc")


def build(dist: str, out: Path) -> Path:
    """The wheel of `dist` (a directory of the checkout), built into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"juno-wheel-{dist}-") as tmp:
        source = Path(tmp) / dist
        shutil.copytree(CHECKOUT / dist, source, ignore=LEFTOVERS)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out),
                        str(source)], check=True)
    with (CHECKOUT / dist / "pyproject.toml").open("rb") as handle:
        name = tomllib.load(handle)["project"]["name"].replace("-", "_")
    made = sorted(out.glob(f"{name}-*.whl"), key=lambda p: p.stat().st_mtime)
    if not made:
        raise SystemExit(f"pip made no wheel of {dist} in {out}")
    return made[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("dists", nargs="*", metavar="DIST", help=f"any of {', '.join(DISTRIBUTIONS)} (default: all)")
    args = parser.parse_args()
    unknown = sorted(set(args.dists) - set(DISTRIBUTIONS))
    if unknown:
        parser.error(f"unknown distribution(s) {', '.join(unknown)}")
    for dist in args.dists or DISTRIBUTIONS:
        print(build(dist, args.out.resolve()))


if __name__ == "__main__":
    main()
