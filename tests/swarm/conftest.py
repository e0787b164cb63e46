"""Two swarm nodes on one machine: a second Docker engine in a network namespace of its own, joined over a veth
pair to a manager (docs/deploy.md, "Sites and nodes"). Both engines are the tests' own; the grid's images come from
the grid's engine by `docker save` and `docker load` (there is no registry)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from juno_dcs.swarm import engine as docker

SUBNET = "10.77.0"  # the veth pair: the manager at .1 (the machine's namespace), the worker at .2 (its own)


def sh(*cmd: str) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True, text=True)


def start(root: Path, namespace: str | None) -> docker.Engine:
    root.mkdir(parents=True)
    engine = docker.Engine(f"unix://{root / 'd.sock'}")
    # nsenter rather than `ip netns exec`, which mounts a sysfs of its own and hides the cgroups from dockerd
    prefix = ["nsenter", f"--net=/var/run/netns/{namespace}"] if namespace else []
    with (root / "dockerd.log").open("ab") as log:
        subprocess.run(["setsid", "-f", *prefix, "dockerd", "--data-root", str(root / "data"), "--exec-root",
                        str(root / "exec"), "-H", engine.host, "--pidfile", str(root / "d.pid"),
                        "--storage-driver=overlay2", "--iptables=false", "--bridge=none"],
                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True)
    deadline = time.monotonic() + 60
    while not engine.answers():
        assert time.monotonic() < deadline, (root / "dockerd.log").read_text()[-2000:]
        time.sleep(0.5)
    return engine


def stop(root: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int((root / "d.pid").read_text()), 15)
    for _ in range(60):
        if not (root / "d.pid").exists():
            break
        time.sleep(0.5)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if str(root) in line]
    for mount in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


def namespace() -> str:
    """The worker's network namespace (named after the test process)."""
    return f"jdcs{os.getpid()}"


@contextlib.contextmanager
def two_nodes(tmp_path: Path, images_from: docker.Engine,
              images: Sequence[str]) -> Iterator[tuple[docker.Engine, docker.Engine]]:
    """A manager (this machine's network namespace, SUBNET.1) and a worker (its own, SUBNET.2), both holding
    `images` of the engine `images_from`."""
    if docker.storage_driver(tmp_path) != "overlay2":
        pytest.skip("no overlay mounts here: two engines under vfs would copy every image twice")
    near, far = f"jd{os.getpid()}a", f"jd{os.getpid()}b"
    roots = (Path(f"/tmp/jdcs-a{os.getpid()}"), Path(f"/tmp/jdcs-b{os.getpid()}"))  # short: unix socket paths
    ns = namespace()
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", near, "type", "veth", "peer", "name", far)
        sh("ip", "link", "set", far, "netns", ns)
        sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", near)
        sh("ip", "link", "set", near, "up")
        for cmd in (["ip", "addr", "add", f"{SUBNET}.2/24", "dev", far], ["ip", "link", "set", far, "up"],
                    ["ip", "link", "set", "lo", "up"]):
            sh("ip", "netns", "exec", ns, *cmd)
        manager, worker = start(roots[0], None), start(roots[1], ns)
        manager.run("swarm", "init", "--advertise-addr", f"{SUBNET}.1", "--listen-addr", f"{SUBNET}.1:2377",
                    "--task-history-limit", "20")
        token = manager.run("swarm", "join-token", "-q", "worker").stdout.strip()
        worker.run("swarm", "join", "--token", token, "--advertise-addr", f"{SUBNET}.2",
                   "--listen-addr", f"{SUBNET}.2:2377", f"{SUBNET}.1:2377")
        saved = tmp_path / "images.tar"
        images_from.run("save", "-o", str(saved), *images, timeout=1800)
        for node in (manager, worker):
            node.run("load", "-i", str(saved), timeout=1800)
        saved.unlink()
        yield manager, worker
    finally:
        for root in roots:
            stop(root)
        subprocess.run(["ip", "link", "del", near], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def place_one_site_apart(manager: docker.Engine, worker: docker.Engine, site: str) -> None:
    """Label the worker with `site` and the manager with every other site of the grid's topology."""
    from juno_dcs.packaged import data_file
    from juno_dcs.topology import load_topology

    sites = sorted(load_topology(data_file("topology.yaml")).sites)
    manager.run("node", "update", *(a for s in sites if s != site
                                    for a in ("--label-add", f"{docker.SITE_LABEL}{s}=true")),
                manager.info()["Swarm"]["NodeID"])
    manager.run("node", "update", "--label-add", f"{docker.SITE_LABEL}{site}=true", worker.info()["Swarm"]["NodeID"])


@contextlib.contextmanager
def docker_host(host: str) -> Iterator[None]:
    """DOCKER_HOST set for this process and the commands it runs, restored afterwards."""
    before = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = before
