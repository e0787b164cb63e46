"""`make demo`: bring up the grid, upload a few raw files at IHEP_DISK as the raw-data service, gather them
into the day's block and put rules on it, all with the stock `rucio` CLI, printing each command.

Later issues grow this into a whole data-taking day (SPADE, Kafka, transfers, production).
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from juno_dcs.grid import launcher
from juno_dcs.settings import GridSettings

FILES = 5
FILE_SIZE = 2 * 1024 * 1024


def _shell_env(settings: GridSettings, account: str) -> dict[str, str]:
    env = dict(os.environ)
    for line in launcher.env_exports(settings, account).splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0]
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def rucio(settings: GridSettings, account: str, *args: str, check: bool = True) -> str:
    print(f"\n[{account}]$ rucio {shlex.join(args)}", flush=True)
    proc = subprocess.run(["rucio", *args], env=_shell_env(settings, account), capture_output=True, text=True,
                          check=False)
    out = proc.stdout + "".join(
        line + "\n" for line in proc.stderr.splitlines() if "ERROR" in line or "Successfully uploaded" in line
    )
    print(out.rstrip())
    if check and (proc.returncode != 0 or "ERROR" in proc.stderr):
        raise SystemExit(f"demo: `rucio {shlex.join(args)}` failed:\n{proc.stderr}")
    return proc.stdout


def rucio_quiet(settings: GridSettings, account: str, *args: str) -> str:
    proc = subprocess.run(["rucio", *args], env=_shell_env(settings, account), capture_output=True, text=True,
                          check=False)
    return proc.stdout


def _counters_complete(table: str, rses: int) -> bool:
    """True when `rses` rows of a `rucio replica list dataset` table have FOUND == TOTAL."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("|") and "_" in line]
    return sum(1 for r in rows if len(r) == 3 and r[1] == r[2] and r[1] != "0") >= rses


def _rule_id(listing: str, expression: str) -> str:
    for line in listing.splitlines():
        if expression in line:
            return line.split()[0]
    raise SystemExit(f"demo: no rule with {expression} in:\n{listing}")


def main() -> int:
    settings = GridSettings()
    print(f"== juno-dcs up --home {settings.home}", flush=True)
    report = launcher.up(settings)
    print(f"grid {'created' if report.created else 'up to date'} in {report.home}; "
          f"{len(report.topology_changes)} topology change(s)")
    status = launcher.status(settings)
    print(f"Rucio at {status['services']['rucio']}, {len(status['processes'])} processes, "
          f"{'healthy' if status['healthy'] else 'NOT healthy'}")

    day = dt.datetime.now(dt.UTC)
    run_number = int(time.time()) % 1_000_000
    block = f"raw:block.{day:%Y%m%d}.physics"
    workdir = Path(settings.home).resolve() / "demo" / f"run{run_number:06d}"
    workdir.mkdir(parents=True, exist_ok=True)
    names = []
    for seq in range(1, FILES + 1):
        name = f"RUN.{run_number:06d}.physics.{seq:05d}.{day:%Y%m%d}.rtraw"
        (workdir / name).write_bytes(os.urandom(FILE_SIZE))
        names.append(name)
    print(f"\n== {FILES} raw files of {FILE_SIZE // 2**20} MiB for run {run_number} in {workdir}")

    rucio(settings, "rawdata", "upload", "--rse", "IHEP_DISK", "--scope", "raw", *[str(workdir / n) for n in names])
    if block.split(":")[1] not in rucio(settings, "rawdata", "did", "list", f"raw:block.{day:%Y%m%d}.*",
                                        "--filter", "type=DATASET"):
        rucio(settings, "rawdata", "did", "add", "--type", "dataset", block)
    rucio(settings, "rawdata", "did", "content", "add", "--to-did", block, *[f"raw:{n}" for n in names])
    existing_rules = rucio(settings, "rawdata", "rule", "list", "--did", block)
    if "IHEP_DISK" not in existing_rules:
        rucio(settings, "rawdata", "rule", "add", "--copies", "1", "--rses", "IHEP_DISK", block,
              "--comment", "IHEP keeps every raw block on disk")
    if "tier=1&type=DISK" not in existing_rules:
        rucio(settings, "rawdata", "rule", "add", "--copies", "2", "--rses", "tier=1&type=DISK", block,
              "--lifetime", str(30 * 86400), "--comment", "two T1 disk copies")
    rucio(settings, "rawdata", "did", "content", "list", block)
    rucio(settings, "rawdata", "rule", "list", "--did", block)
    t1_rule = _rule_id(rucio(settings, "rawdata", "rule", "list", "--did", block), "tier=1&type=DISK")
    files_in_block = rucio_quiet(settings, "rawdata", "did", "content", "list", block).count("| raw:")
    wanted = f"Locks OK/REPLICATING/STUCK: {2 * files_in_block}/0/0"  # two T1 disk copies of every file
    started = time.monotonic()
    while time.monotonic() - started < 300:
        if wanted in " ".join(rucio_quiet(settings, "rawdata", "rule", "show", t1_rule).split()):
            break
        time.sleep(3)
    print(f"\n== the T1 disk rule after {time.monotonic() - started:.0f} s:")
    rucio(settings, "rawdata", "rule", "list", "--did", block)
    # dataset replica counters are Rucio's abacus-collection-replica's work: give it a few cycles
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _counters_complete(
            rucio_quiet(settings, "rawdata", "replica", "list", "dataset", block), 3):
        time.sleep(2)
    rucio(settings, "rawdata", "replica", "list", "dataset", block)
    print(
        "\nThe IHEP_DISK rule is OK at once: the files are there. The T1 disk rule went through the conveyor and\n"
        "the transfer service: HTTP third-party copies between the XRootD storage elements.\n"
        f"Look around yourself:  eval \"$(.venv/bin/juno-dcs env --home {settings.home})\"; rucio rse list\n"
        f"Stop the grid:         .venv/bin/juno-dcs down --home {settings.home}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
