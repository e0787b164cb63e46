"""Benchmark: the grid as a Docker Swarm stack against the box (docs/deploy.md).

1. Images: `juno-dcs images build` cold (with --cold: every juno-dcs image and the engine's build cache removed
   first) and cached: seconds, and each image's size.
2. `juno-dcs up --engine swarm` on a new home: seconds until it returns (every service waited for, the topology
   applied), and the same for the box's `juno-dcs up`.
3. Memory of the whole grid, both idle after 60 s: the sum of the stack's containers' memory (docker stats)
   against the resident memory of the box's supervisord and everything under it; the stack's own PostgreSQL
   and MariaDB apart (`memory_stack_databases_mb`), since the box's servers are the machine's.
4. Side by side, box and stack alternately (`--runs` each, medians): `rule_files_per_s`
   (benchmarks/transfers.py --only rule) and ingest `files_per_s` (benchmarks/ingest.py, throughput part).
5. With `--only replicas`: what the second replica costs, on one stack: the services that run twice scaled to 2
   and to 1 alternately (`--runs` each), `rule_files_per_s_replicas_2` / `_1` (medians).
6. With `--only spread`: what the node gateways cost. The stack on two swarm nodes of its own (tests/swarm/
   conftest.py: a second engine in a network namespace), CNAF on the second node, every other site on the
   first: `--runs` rules of `--rule-files` files IHEP_DISK -> CNAF_DISK, whose copies cross the gateways both
   ways. Then CNAF's label moves to the first node, `up` runs again (no gateway on one node) and the second node
   is drained, so CNAF's services move to the first node: the same rules again. `rule_files_per_s_across_nodes`
   / `_same_node` (medians), `up_spread_s`.

Prints one JSON object.

    .venv/bin/python benchmarks/deploy.py [--cold] [--runs 3] [--rule-files 300] [--messages 20000]
                                          [--only replicas|spread]
"""

from __future__ import annotations

import argparse
import json
import shutil
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
from tests.conftest import free_base_port

from juno_dcs.settings import GridSettings
from juno_dcs.swarm import engine as docker
from juno_dcs.swarm import images

HERE = Path(__file__).resolve().parent
PY = sys.executable
JUNO_DCS = str(Path(PY).parent / "juno-dcs")


def sh(*cmd: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def build_images(engine: docker.Engine, cold: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cold:
        listed = engine.run("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                            f"reference={images.REPO}/*").stdout.split()
        for tag in listed:
            engine.run("rmi", "-f", tag, check=False)
        engine.run("builder", "prune", "-af", check=False)
        engine.run("image", "prune", "-af", check=False)
    started = time.monotonic()
    report = json.loads(sh(JUNO_DCS, "images", "build", "--json").stdout)
    out["build_cold_s" if cold else "build_first_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    again = json.loads(sh(JUNO_DCS, "images", "build", "--json").stdout)
    out["build_cached_s"] = round(time.monotonic() - started, 1)
    out["cached_built_nothing"] = again["built"] == []
    out["image_mb"] = {tag: round(n / 1e6) for tag, n in report["bytes"].items()}
    # the runtime image holds the base's layer, and every role's tag of the grid's software is the runtime image;
    # the databases' images add their own layers to the base
    base = report["bytes"][report["tags"]["base"]]
    own = [report["bytes"][report["tags"][role]] - base for role in images.OWN_ROLES if role in report["tags"]]
    out["distinct_mb"] = round((report["bytes"][report["tags"]["runtime"]] + sum(own)) / 1e6)
    return out


def up(home: Path, engine: str) -> float:
    started = time.monotonic()
    sh(JUNO_DCS, "up", "--home", str(home), "--base-port", str(free_base_port()), "--engine", engine, timeout=3600)
    return round(time.monotonic() - started, 1)


def box_memory_mb(home: Path) -> float:
    pid = int((home / "run" / "supervisord.pid").read_text().strip())
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    return round(sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20, 1)


def stack_memory_mb(engine: docker.Engine, home: Path) -> tuple[float, float]:
    """The stack's containers' memory: all but its own databases (what the box's supervisord runs too), and the
    databases' (the box uses the machine's servers, which it does not count)."""
    from juno_dcs.grid.home import GridHome
    from juno_dcs.swarm.databases import SERVICES
    from juno_dcs.swarm.runner import stack_name

    ids = engine.run("ps", "-q", "--filter", f"label=com.docker.stack.namespace={stack_name(GridHome(home))}"
                     ).stdout.split()
    lines = engine.run("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *ids).stdout.splitlines()
    grid = databases = 0.0
    for line in lines:
        name, _, usage = line.partition(" ")
        used = usage.split("/")[0].strip()
        number, unit = float(used.rstrip("KMGiBkb")), used.lstrip("0123456789.")
        mb = number * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "B": 1 / 2**20}.get(unit, 1)
        if any(name.startswith(f"{stack_name(GridHome(home))}_{s}.") for s in SERVICES):
            databases += mb
        else:
            grid += mb
    return round(grid, 1), round(databases, 1)


def rule_files_per_s(home: Path, files: int, destination: str = "CNAF_DISK") -> float:
    out = json.loads(sh(PY, str(HERE / "transfers.py"), "--only", "rule", "--home", str(home),
                        "--files", str(files), "--destination", destination).stdout)
    return float(out["rule_files_per_s"])


def ingest_files_per_s(home: Path, messages: int) -> float:
    out = json.loads(sh(PY, str(HERE / "ingest.py"), "--home", str(home), "--messages", str(messages),
                        "--seconds", "10", "--rate", "20", "--checked", "0").stdout)
    return float(out["files_per_s"])


def replicas_pair(engine: docker.Engine, home: Path, runs: int, files: int) -> dict[str, Any]:
    from juno_dcs.grid.home import GridHome
    from juno_dcs.swarm.runner import stack_name
    from juno_dcs.swarm.stack import DOUBLED

    stack = stack_name(GridHome(home))
    samples: dict[int, list[float]] = {2: [], 1: []}
    for _ in range(runs):
        for n in (2, 1):
            engine.run("service", "scale", "--detach", *(f"{stack}_{name}={n}" for name in sorted(DOUBLED)))
            time.sleep(45)  # stopped replicas' heartbeats go, the others take their share
            samples[n].append(rule_files_per_s(home, files))
    return {"rule_files_per_s_replicas_2": statistics.median(samples[2]),
            "rule_files_per_s_replicas_1": statistics.median(samples[1]),
            "rule_files_per_s_replicas_runs": {"2": samples[2], "1": samples[1]}}


def spread(engine: docker.Engine, runs: int, files: int) -> dict[str, Any]:
    """The stack with CNAF on a second node of a swarm of the benchmark's own; rules across nodes and on one."""
    from tests.swarm.conftest import docker_host, place_one_site_apart, two_nodes

    tags = sorted(set(images.build(engine).tags.values()))
    tmp = Path(tempfile.mkdtemp(prefix="juno-bench-spread-"))
    tmp.chmod(0o755)
    home = tmp / "grid"
    try:
        with two_nodes(tmp, engine, tags) as (manager, worker), docker_host(manager.host):
            ids = manager.info()["Swarm"]["NodeID"], worker.info()["Swarm"]["NodeID"]
            place_one_site_apart(manager, worker, "CNAF")
            try:
                out: dict[str, Any] = {"up_spread_s": up(home, "swarm")}
                samples: dict[str, list[float]] = {"across": [], "same": []}
                samples["across"] = [rule_files_per_s(home, files) for _ in range(runs)]
                manager.run("node", "update", "--label-add", f"{docker.SITE_LABEL}CNAF=true", ids[0])
                manager.run("node", "update", "--label-rm", f"{docker.SITE_LABEL}CNAF", ids[1])
                sh(JUNO_DCS, "up", "--home", str(home), timeout=1800)  # one node carries every site: no gateway
                manager.run("node", "update", "--availability", "drain", ids[1])  # CNAF's tasks move over
                sh(JUNO_DCS, "up", "--home", str(home), timeout=1800)  # waits until every service is back
                samples["same"] = [rule_files_per_s(home, files) for _ in range(runs)]
                out |= {"rule_files_per_s_across_nodes": statistics.median(samples["across"]),
                        "rule_files_per_s_same_node": statistics.median(samples["same"]),
                        "rule_files_per_s_spread_runs": samples}
                return out
            finally:
                subprocess.run([JUNO_DCS, "down", "--purge", "--home", str(home)], capture_output=True, check=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="remove the images and build cache first")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rule-files", type=int, default=300)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--only", choices=("replicas", "spread"), default=None,
                        help="only what the second replica costs, or only what the node gateways cost")
    args = parser.parse_args()
    engine = docker.ensure_engine(GridSettings().docker_dir)
    result: dict[str, Any] = {"benchmark": "deploy", "storage_driver": engine.info().get("Driver"),
                              "runs": args.runs, "rule_files": args.rule_files, "messages": args.messages}
    if args.only == "spread":
        result |= spread(engine, args.runs, args.rule_files)
        print(json.dumps(stamp(result), indent=2))
        return
    if args.only == "replicas":
        tmp = Path(tempfile.mkdtemp(prefix="juno-bench-deploy-"))
        tmp.chmod(0o755)
        try:
            up(tmp / "stack", "swarm")
            result |= replicas_pair(engine, tmp / "stack", args.runs, args.rule_files)
            print(json.dumps(stamp(result), indent=2))
        finally:
            subprocess.run([JUNO_DCS, "down", "--purge", "--home", str(tmp / "stack")], capture_output=True,
                           check=False)
            shutil.rmtree(tmp, ignore_errors=True)
        return
    result |= build_images(engine, args.cold)
    tmp = Path(tempfile.mkdtemp(prefix="juno-bench-deploy-"))
    tmp.chmod(0o755)
    homes = {"box": tmp / "box", "stack": tmp / "stack"}
    try:
        result["up_stack_s"] = up(homes["stack"], "swarm")
        result["up_box_s"] = up(homes["box"], "supervisor")
        time.sleep(60)
        result["memory_stack_mb"], result["memory_stack_databases_mb"] = stack_memory_mb(engine, homes["stack"])
        result["memory_box_mb"] = box_memory_mb(homes["box"])
        samples: dict[str, dict[str, list[float]]] = {"rule": {"box": [], "stack": []},
                                                      "ingest": {"box": [], "stack": []}}
        for _ in range(args.runs):
            for side in ("box", "stack"):
                samples["rule"][side].append(rule_files_per_s(homes[side], args.rule_files))
                samples["ingest"][side].append(ingest_files_per_s(homes[side], args.messages))
        for what, key in (("rule", "rule_files_per_s"), ("ingest", "ingest_files_per_s")):
            for side in ("box", "stack"):
                result[f"{key}_{side}"] = round(statistics.median(samples[what][side]), 1)
                result[f"{key}_{side}_runs"] = samples[what][side]
            result[f"{key}_stack_over_box"] = round(result[f"{key}_stack"] / result[f"{key}_box"], 2)
        print(json.dumps(stamp(result), indent=2))
    finally:
        for home in homes.values():
            subprocess.run([JUNO_DCS, "down", "--purge", "--home", str(home)], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
