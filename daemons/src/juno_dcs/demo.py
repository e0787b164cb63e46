"""`make demo`: a scaled data-taking day on the grid.

1. `juno-dcs up`: Rucio, the storage elements, the transfer service, Kafka and the raw-data ingestor.
2. `juno-dcs spade-sim`: SPADE writes a day of raw files to IHEP_DISK (scaled: DAY_FILES files of FILE_SIZE,
   JUNO writes ~5,000 files of ~1 GB a day) and announces each on Kafka.
3. The ingestor registers them into the day's block with the share policy's rules; Rucio and the transfer service
   copy them by HTTP third-party copy to CNAF and JINR (and IN2P3 one day in three), then to the tapes.
4. The day ends with the per-site summary of `juno-dcs raw status`.
5. A small Monte Carlo production (PROD_JOBS jobs detsim -> elecsim -> cal -> rec): `juno-prod submit`; the grid's
   pilots run the payloads at several sites (cal reads its condition data through the site's Squid), each
   step's jobs are created as the previous step's files are registered in Rucio, and the final outputs are
   replicated by rule to CNAF. It ends with `juno-prod status`. Every command is printed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from juno_dcs.grid import launcher
from juno_dcs.settings import GridSettings

DAY_FILES = 200
FILE_SIZE = 1_000_000
WAIT_S = 900
PROD_JOBS = 10
PROD_WAIT_S = 900


def juno_dcs(settings: GridSettings, *args: str, show: bool = True) -> str:
    """`juno-dcs ARGS --home HOME`, printed with its output."""
    if show:
        print(f"\n$ juno-dcs {shlex.join(args)}", flush=True)
    proc = subprocess.run([str(Path(sys.executable).parent / "juno-dcs"), *args, "--home", str(settings.home)],
                          capture_output=True, text=True, check=False)
    if show:
        print(proc.stdout + proc.stderr, end="", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"demo: juno-dcs {args[0]} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def _progress(blocks: list[dict[str, Any]]) -> tuple[str, bool]:
    """One line: per site, the available replicas and the rule states; and whether every rule is OK."""
    sites: dict[str, tuple[int, list[str]]] = {}
    for block in blocks:
        for name, site in block["sites"].items():
            count, states = sites.get(name, (0, []))
            sites[name] = (count + site["replicas"], states + site["rules"])
    line = "  ".join(f"{name} {count} ({','.join(sorted(set(states))) or '-'})"
                     for name, (count, states) in sorted(sites.items()))
    covered = all(d["locks_ok"] >= b["files"] for b in blocks for site in b["sites"].values()
                  for d in site["rule_details"])  # Rucio calls a rule OK before it has evaluated new files
    done = bool(blocks) and covered and all(s == "OK" for _, states in sites.values() for s in states) \
        and all(b["state"] == "closed" for b in blocks)
    return line, done


def _user_env(settings: GridSettings, account: str) -> dict[str, str]:
    """The environment `eval "$(juno-dcs env --account A)"` gives a user's shell."""
    exports = juno_dcs(settings, "env", "--account", account, show=False)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    for line in exports.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


def _tool(settings: GridSettings, program: str, *args: str, account: str = "production") -> str:
    """A user's command (`juno-prod`, `juno-payload`) as `account`, printed with its output."""
    env = _user_env(settings, account)
    print(f"\n$ {program} {shlex.join(args)}", flush=True)
    proc = subprocess.run([str(Path(sys.executable).parent / program), *args], env=env, capture_output=True,
                          text=True, check=False)
    print(proc.stdout + proc.stderr, end="", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"demo: {program} {args[0]} failed ({proc.returncode})")
    return proc.stdout


def production(settings: GridSettings) -> bool:
    """A small production through the grid's dispatcher, pilots, payloads, conditions and Rucio."""
    name, tag = f"demo-e-{uuid.uuid4().hex[:4]}", f"GT-DEMO-{uuid.uuid4().hex[:4]}"
    print(f"\n== a Monte Carlo production of {PROD_JOBS} jobs, detsim -> elecsim -> cal -> rec; first a locked "
          f"global tag for cal")
    _tool(settings, "juno-payload", "make-conditions", "--tag", tag, "--runs", "1-999999", "--home",
          str(settings.home))
    steering = settings.home / f"{name}.yaml"
    steering.write_text(yaml.safe_dump({
        "name": name, "campaign": "DEMO", "software": "J25.1.0",
        "args": {"detsim": "gun --particles e- --momentums 2.0 --volume pTarget"}, "events_per_job": 50,
        "jobs": PROD_JOBS, "workflow": ["detsim", "elecsim", "cal", "rec"], "conditions_tag": tag, "run": 1234,
        "output_storage": "site-local", "destinations": ["CNAF_DISK"], "lifetime": "7 days",
    }, sort_keys=False))
    print(f"\n== the steering file {steering}:\n{steering.read_text()}", end="")
    _tool(settings, "juno-prod", "submit", str(steering))
    print("\n== the pilot factory starts pilots where jobs wait; each step's jobs appear as the files of the one "
          "before are registered:")
    started, done = time.monotonic(), False
    while time.monotonic() - started < PROD_WAIT_S and not done:
        status = json.loads(_quiet_status(settings, name))
        line = "  ".join(f"{s['step']} {s['jobs_by_state'].get('finished', 0)}/{s['jobs_created']} "
                         f"({s['files']} files)" for s in status["steps"])
        print(f"  {time.monotonic() - started:4.0f} s  {line}", flush=True)
        done = status["state"] == "done"
        if not done:
            time.sleep(5)
    print(f"\n== the production {'is done' if done else 'is NOT done yet'} after "
          f"{time.monotonic() - started:.0f} s:")
    _tool(settings, "juno-prod", "status", name)
    return done


def _quiet_status(settings: GridSettings, name: str) -> str:
    proc = subprocess.run([str(Path(sys.executable).parent / "juno-prod"), "status", name, "--json"],
                          env=_user_env(settings, "production"),
                          capture_output=True, text=True, check=True)
    return proc.stdout


def main() -> int:
    settings = GridSettings()
    print(f"== juno-dcs up --home {settings.home}", flush=True)
    report = launcher.up(settings)
    status = launcher.status(settings)
    print(f"grid {'created' if report.created else 'up to date'} in {report.home}: Rucio at "
          f"{status['services']['rucio']}, Kafka at {status['services']['kafka']}, {len(status['processes'])} "
          f"processes, {'healthy' if status['healthy'] else 'NOT healthy'}")

    # a finished day (two days ago), so that its block closes once the data stop and the tapes follow
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    run = 100000 + int(time.time()) % 900000
    print(f"\n== SPADE: one day of raw data ({DAY_FILES} files of {FILE_SIZE / 1e6:.0f} MB, run {run}, "
          f"received on {day}) written to IHEP_DISK and announced on Kafka")
    juno_dcs(settings, "spade-sim", "--files", str(DAY_FILES), "--days", "1", "--start-date", day.isoformat(),
             "--size", str(FILE_SIZE), "--run", str(run), "--rate", "50", "--no-progress")

    print("\n== the ingestor registers the files into the day's block, whose rules (placement/raw.yaml) move "
          "them;\n   the block closes 30 s after its last file, then the tier-1 tapes follow their disks:")
    started = time.monotonic()
    blocks: list[dict[str, Any]] = []
    done = False
    while time.monotonic() - started < WAIT_S and not done:
        blocks = json.loads(juno_dcs(settings, "raw", "status", "--day", f"{day:%Y%m%d}", "--stream", "physics",
                                     "--json", show=False))
        line, done = _progress(blocks)
        print(f"  {time.monotonic() - started:4.0f} s  {line}", flush=True)
        if not done:
            time.sleep(10)
    print(f"\n== the day {'is complete' if done else 'is NOT complete yet'} after {time.monotonic() - started:.0f} s; "
          "the per-site summary:")
    juno_dcs(settings, "raw", "status", "--day", f"{day:%Y%m%d}", "--stream", "physics")
    print(
        "\nIHEP holds everything on disk and tape; CNAF and JINR a full copy each (disk for 90 days, tape for\n"
        "ever); IN2P3 takes one day in three (docs/placement.md). The copies are HTTP third-party copies between the\n"
        "XRootD storage elements, driven by Rucio's conveyor through the transfer service.\n"
        f"Simulate more:         .venv/bin/juno-dcs spade-sim --home {settings.home} --files 1000 --days 3\n"
        f"Look around yourself:  eval \"$(.venv/bin/juno-dcs env --home {settings.home})\"; rucio rse list\n"
        f"Stop the grid:         .venv/bin/juno-dcs down --home {settings.home}"
    )
    produced = production(settings)
    print(
        "\nThe jobs ran in pilots started by the grid's pilot factory (`juno-pilot factory`), which asked the\n"
        "dispatcher (`juno-wms`) for work; see docs/wms.md. A user's own tasks: jsub (docs/jsub.md).\n"
        f"Jobs:                  eval \"$(.venv/bin/juno-dcs env --home {settings.home} --account production)\"; "
        ".venv/bin/juno-wms jobs   # your token: docs/security.md"
    )
    return 0 if done and produced else 1


if __name__ == "__main__":
    sys.exit(main())
