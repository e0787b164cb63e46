"""`make demo`: bring up the grid, upload a few raw files at IHEP_DISK as the raw-data service, gather them
into the day's block with the stock `rucio` CLI, and let the share policy (`juno-dcs policy apply`) place
the block: disk copies at once, the tier-1 tapes once the block is closed. Every command is printed.

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
from typing import Any

from juno_dcs.grid import launcher
from juno_dcs.grid.home import GridHome
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


def _open_day(client: Any, today: dt.date) -> dt.date:
    """Today, or the first later day whose physics block is not closed yet (an earlier demo closed it)."""
    from rucio.common.exception import DataIdentifierNotFound

    day = today
    while True:
        try:
            if client.get_did("raw", f"block.{day:%Y%m%d}.physics").get("open", True):
                return day
        except DataIdentifierNotFound:
            return day
        day += dt.timedelta(days=1)


def juno_dcs(settings: GridSettings, *args: str) -> str:
    """`juno-dcs ARGS --home HOME`, printed with its output (exit 3 of `policy apply`: rules still wait)."""
    print(f"\n$ juno-dcs {shlex.join(args)}", flush=True)
    proc = subprocess.run([str(Path(sys.executable).parent / "juno-dcs"), *args, "--home", str(settings.home)],
                          capture_output=True, text=True, check=False)
    print(proc.stdout + proc.stderr, end="", flush=True)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"demo: juno-dcs {args[0]} failed ({proc.returncode})")
    return proc.stdout


def main() -> int:
    settings = GridSettings()
    print(f"== juno-dcs up --home {settings.home}", flush=True)
    report = launcher.up(settings)
    print(f"grid {'created' if report.created else 'up to date'} in {report.home}; "
          f"{len(report.topology_changes)} topology change(s)")
    status = launcher.status(settings)
    print(f"Rucio at {status['services']['rucio']}, {len(status['processes'])} processes, "
          f"{'healthy' if status['healthy'] else 'NOT healthy'}")

    home = GridHome(settings.home)
    rawdata = launcher.root_client(home, home.load_state(), "rawdata")
    day = _open_day(rawdata, dt.datetime.now(dt.UTC).date())
    run_number = int(time.time()) % 1_000_000
    block = f"raw:block.{day:%Y%m%d}.physics"
    workdir = Path(settings.home).resolve() / "demo" / f"run{run_number:06d}"
    workdir.mkdir(parents=True, exist_ok=True)
    names = []
    for seq in range(1, FILES + 1):
        name = f"RUN.{run_number:06d}.physics.{seq:05d}.{day:%Y%m%d}.rtraw"
        (workdir / name).write_bytes(os.urandom(FILE_SIZE))
        names.append(name)
    print(f"\n== {FILES} raw files of {FILE_SIZE // 2**20} MiB for run {run_number} of {day} in {workdir}")

    rucio(settings, "rawdata", "upload", "--rse", "IHEP_DISK", "--scope", "raw", *[str(workdir / n) for n in names])
    if block.split(":")[1] not in rucio(settings, "rawdata", "did", "list", f"raw:block.{day:%Y%m%d}.*",
                                        "--filter", "type=DATASET"):
        rucio(settings, "rawdata", "did", "add", "--type", "dataset", block)
    rucio(settings, "rawdata", "did", "content", "add", "--to-did", block, *[f"raw:{n}" for n in names])
    print("\n== the share policy (etc/policy/raw.yaml) for this block, then applied while the block is open:")
    juno_dcs(settings, "policy", "plan", block)
    juno_dcs(settings, "policy", "apply", block)
    print("\n== the day is over: the block is closed, and the tier-1 tapes follow their disks")
    rucio(settings, "rawdata", "did", "update", "--close", block)
    juno_dcs(settings, "policy", "apply", block, "--wait", "300")
    started = time.monotonic()
    states: dict[str, str] = {}
    while time.monotonic() - started < 400:
        states = {r["rse_expression"]: r["state"] for r in rawdata.list_did_rules("raw", block.split(":")[1])}
        if states and all(state == "OK" for state in states.values()):
            break
        time.sleep(3)
    print(f"\n== the block's rules after {time.monotonic() - started:.0f} s more:")
    rucio(settings, "rawdata", "rule", "list", "--did", block)
    # dataset replica counters are Rucio's abacus-collection-replica's work: give it a few cycles
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _counters_complete(
            rucio_quiet(settings, "rawdata", "replica", "list", "dataset", block), len(states)):
        time.sleep(2)
    rucio(settings, "rawdata", "replica", "list", "dataset", block)
    print(
        "\nIHEP_DISK is OK at once: the files are there. Every other copy went through the conveyor and the\n"
        "transfer service: HTTP third-party copies between the XRootD storage elements, the tapes through\n"
        "ARCHIVING. IN2P3 takes one day in three (docs/policy.md).\n"
        f"Look around yourself:  eval \"$(.venv/bin/juno-dcs env --home {settings.home})\"; rucio rse list\n"
        f"Stop the grid:         .venv/bin/juno-dcs down --home {settings.home}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
