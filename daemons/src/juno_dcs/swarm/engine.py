"""The Docker engine the grid's stack runs on, and the swarm it belongs to.

An engine that already answers (`DOCKER_HOST`, or the system's socket) is used as it is. Otherwise `juno-dcs`
starts one of its own under `docker_dir` (settings), without iptables rules, with the overlay2 storage driver
where the kernel mounts overlays there, else vfs (docs/deploy.md). Its swarm listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from juno_dcs.errors import ConfigError, ServiceError, ServiceTimeout

logger = logging.getLogger(__name__)

SYSTEM_SOCKET = Path("/var/run/docker.sock")
SWARM_ADDR = "127.0.0.1"
SITE_LABEL = "juno.site."  # a node runs a site's services when it carries juno.site.<SITE>=true


def docker_cli() -> str:
    """Debian's client, which matches Debian's engine; any other `docker` on PATH otherwise."""
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    raise ConfigError("no docker client: install Debian's docker.io (`make setup` does)")


@dataclass(frozen=True)
class Engine:
    """One Docker engine, reached at `host` (a DOCKER_HOST value)."""

    host: str

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float | None = 600,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": self.host}
        proc = subprocess.run([docker_cli(), *args], input=stdin, capture_output=True, text=True, env=env,
                              timeout=timeout, cwd=cwd, check=False)
        if check and proc.returncode != 0:
            raise ServiceError(f"docker {' '.join(args[:3])}: {(proc.stderr or proc.stdout).strip()}")
        return proc

    def answers(self) -> bool:
        try:
            return self.run("version", "--format", "{{.Server.Version}}", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def info(self) -> dict[str, Any]:
        return dict(json.loads(self.run("info", "--format", "{{json .}}").stdout))


def private_host(docker_dir: Path) -> str:
    return f"unix://{docker_dir / 'docker.sock'}"


def ensure_engine(docker_dir: Path, timeout: float = 60.0) -> Engine:
    """An engine that answers: DOCKER_HOST's, the system's, or one started here under `docker_dir`."""
    if os.environ.get("DOCKER_HOST"):
        engine = Engine(os.environ["DOCKER_HOST"])
        if not engine.answers():
            raise ServiceError(f"the Docker engine at DOCKER_HOST={engine.host} does not answer")
        return engine
    for host in (private_host(docker_dir), f"unix://{SYSTEM_SOCKET}"):
        engine = Engine(host)
        if Path(host.removeprefix("unix://")).exists() and engine.answers():
            return engine
    return start_engine(docker_dir, timeout)


def storage_driver(docker_dir: Path) -> str:
    """overlay2 when an overlay mount works in `docker_dir`, else vfs. Under vfs every container is a full copy
    of its image (1.4 GB for the grid's): a grid of 60 containers would not fit on most disks."""
    probe = docker_dir / "overlay-probe"
    shutil.rmtree(probe, ignore_errors=True)
    parts = {name: probe / name for name in ("lower", "upper", "work", "merged")}
    for path in parts.values():
        path.mkdir(parents=True)
    options = f"lowerdir={parts['lower']},upperdir={parts['upper']},workdir={parts['work']}"
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(parts["merged"])],
                             capture_output=True, check=False).returncode == 0
    if mounted:
        subprocess.run(["umount", str(parts["merged"])], capture_output=True, check=False)
    shutil.rmtree(probe, ignore_errors=True)
    return "overlay2" if mounted else "vfs"


def start_engine(docker_dir: Path, timeout: float = 60.0) -> Engine:
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not Path(dockerd).exists():
        raise ConfigError("no Docker engine answers and dockerd is not installed: `make setup` installs docker.io")
    docker_dir.mkdir(parents=True, exist_ok=True)
    engine = Engine(private_host(docker_dir))
    driver = storage_driver(docker_dir)
    for stale in ("docker.sock", "docker.pid"):  # of an engine that is gone (it does not answer)
        (docker_dir / stale).unlink(missing_ok=True)
    # `setsid -f`: the engine runs on in a session of its own, not as a child of this process
    with (docker_dir / "dockerd.log").open("ab") as log:
        subprocess.run(
            ["setsid", "-f", dockerd, "--data-root", str(docker_dir / "data"), "--exec-root", str(docker_dir / "exec"),
             "-H", engine.host, "--pidfile", str(docker_dir / "docker.pid"),
             f"--storage-driver={driver}", "--iptables=false", "--ip-masq=false"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.answers():
            logger.info("started a Docker engine at %s (storage driver %s)", engine.host, driver)
            return engine
        time.sleep(0.5)
    raise ServiceTimeout(f"the Docker engine started under {docker_dir} did not answer in {timeout:.0f} s "
                         f"(see {docker_dir / 'dockerd.log'})")


TASK_HISTORY = 20  # failed tasks a service keeps: `up` counts them to tell a service that cannot start (runner.py)


def ensure_swarm(engine: Engine) -> list[str]:
    """Make the engine a swarm manager if it is in no swarm; returns what was done. The swarm keeps at least
    TASK_HISTORY tasks per service (Docker's default, 5, hides a service's earlier failures)."""
    swarm = engine.info().get("Swarm", {})
    done = []
    if swarm.get("LocalNodeState") != "active":
        engine.run("swarm", "init", "--advertise-addr", SWARM_ADDR, "--listen-addr", f"{SWARM_ADDR}:2377",
                   "--task-history-limit", str(TASK_HISTORY))
        return [f"made the engine at {engine.host} a swarm manager (127.0.0.1:2377)"]
    if not swarm.get("ControlAvailable"):
        raise ConfigError(f"the Docker engine at {engine.host} is a swarm worker: run `up` against a manager")
    orchestration = ((swarm.get("Cluster") or {}).get("Spec") or {}).get("Orchestration") or {}
    limit = int(orchestration.get("TaskHistoryRetentionLimit") or 5)  # Docker's default when unset
    if limit < TASK_HISTORY:
        engine.run("swarm", "update", "--task-history-limit", str(TASK_HISTORY))
        done.append(f"the swarm keeps {TASK_HISTORY} tasks per service (it kept {limit})")
    return done


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    ready: bool
    sites: frozenset[str]
    address: str = ""  # where the other nodes reach it (its swarm address)


def nodes(engine: Engine) -> list[Node]:
    ids = engine.run("node", "ls", "--format", "{{.ID}}").stdout.split()
    found = []
    for raw in json.loads(engine.run("node", "inspect", *ids).stdout) if ids else []:
        labels = raw.get("Spec", {}).get("Labels") or {}
        sites = frozenset(k.removeprefix(SITE_LABEL) for k, v in labels.items()
                          if k.startswith(SITE_LABEL) and v == "true")
        found.append(Node(id=raw["ID"], hostname=raw["Description"]["Hostname"],
                          ready=raw["Status"]["State"] == "ready", sites=sites, address=node_address(raw)))
    return found


def node_address(raw: dict[str, Any]) -> str:
    """A node's swarm address: `Status.Addr`, or for a manager that reports 0.0.0.0 there, its manager address."""
    address = str((raw.get("Status") or {}).get("Addr") or "")
    if address in ("", "0.0.0.0"):  # noqa: S104 (read, not bound)
        manager = str((raw.get("ManagerStatus") or {}).get("Addr") or "")
        address = manager.rsplit(":", 1)[0] if manager else address
    return address


def unplaced(found: list[Node], sites: list[str]) -> list[str]:
    """The sites that no ready node of a swarm of several nodes carries the label of."""
    placed = {s for n in found if n.ready for s in n.sites}
    return [s for s in sites if s not in placed]


def place_sites(engine: Engine, sites: list[str]) -> list[str]:
    """Every site must have a node. A swarm of one node runs every site; a larger swarm is labelled by its
    operator (`docker node update --label-add juno.site.CNAF=true NODE`), and a site without a node is an error
    that names it before anything is deployed."""
    found = [n for n in nodes(engine) if n.ready]
    if len(found) == 1:
        missing = [s for s in sites if s not in found[0].sites]
        if missing:
            engine.run("node", "update", *(a for s in missing for a in ("--label-add", f"{SITE_LABEL}{s}=true")),
                       found[0].id)
            return [f"labelled node {found[0].hostname} with sites {', '.join(missing)}"]
        return []
    missing = unplaced(found, sites)
    if missing:
        raise ConfigError(
            f"the topology places services at {', '.join(missing)} but no ready swarm node carries "
            f"{', '.join(SITE_LABEL + s + '=true' for s in missing)}; label a node for each "
            "(docker node update --label-add ...); nothing was deployed")
    return []
