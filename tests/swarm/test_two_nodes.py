"""Two swarm nodes on one machine (docs/deploy.md, "Sites and nodes"): a second Docker engine in a network namespace
of its own, joined over a veth pair to a manager, each node labelled with its sites. The placement constraints of
the stack put a site's service on its node, the swarm's overlay network carries traffic between the nodes by service
name, and `up`'s check refuses sites that no node carries. Both engines are the test's own (the grid's engine is
not touched); the veth pair's addresses are the test's own hosts. Slow: `make test-swarm`."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from juno_dcs.errors import ConfigError
from juno_dcs.settings import GridSettings
from juno_dcs.swarm import engine as docker
from juno_dcs.swarm import images

pytestmark = [pytest.mark.slow, pytest.mark.swarm]

SUBNET = "10.77.0"  # the veth pair: the manager at .1 (the machine's namespace), the worker at .2 (its own)
SERVER = ("perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => 7000, Listen => 5, ReuseAddr => 1) "
          "or die; while ($c = $s->accept) { print $c \"hello from CNAF\\n\"; close $c }'")


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


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[docker.Engine, docker.Engine]]:
    if docker.storage_driver(tmp_path) != "overlay2":
        pytest.skip("no overlay mounts here: two engines under vfs would copy every image twice")
    namespace, near, far = f"jdcs{os.getpid()}", f"jd{os.getpid()}a", f"jd{os.getpid()}b"
    roots = (Path(f"/tmp/jdcs-a{os.getpid()}"), Path(f"/tmp/jdcs-b{os.getpid()}"))  # short: unix socket paths
    sh("ip", "netns", "add", namespace)
    try:
        sh("ip", "link", "add", near, "type", "veth", "peer", "name", far)
        sh("ip", "link", "set", far, "netns", namespace)
        sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", near)
        sh("ip", "link", "set", near, "up")
        for cmd in (["ip", "addr", "add", f"{SUBNET}.2/24", "dev", far], ["ip", "link", "set", far, "up"],
                    ["ip", "link", "set", "lo", "up"]):
            sh("ip", "netns", "exec", namespace, *cmd)
        manager, worker = start(roots[0], None), start(roots[1], namespace)
        manager.run("swarm", "init", "--advertise-addr", f"{SUBNET}.1", "--listen-addr", f"{SUBNET}.1:2377")
        token = manager.run("swarm", "join-token", "-q", "worker").stdout.strip()
        worker.run("swarm", "join", "--token", token, "--advertise-addr", f"{SUBNET}.2",
                   "--listen-addr", f"{SUBNET}.2:2377", f"{SUBNET}.1:2377")
        # the grid's base image, from the grid's own engine, on both nodes (no registry)
        grid_engine = docker.ensure_engine(GridSettings().docker_dir)
        base = images.build_base(grid_engine, images.BuildReport())
        saved = tmp_path / "base.tar"
        grid_engine.run("save", "-o", str(saved), base)
        for node in (manager, worker):
            node.run("load", "-i", str(saved))
        yield manager, worker
    finally:
        for root in roots:
            stop(root)
        subprocess.run(["ip", "link", "del", near], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)


def node_of(manager: docker.Engine, service: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = manager.run("service", "ps", "--filter", "desired-state=running", "--format",
                          "{{.Node}} {{.CurrentState}}", service).stdout.split("\n")[0]
        if "Running" in out:
            return manager.run("service", "ps", "-q", "--filter", "desired-state=running", service).stdout.split()[0]
        time.sleep(1)
    raise AssertionError(f"{service} did not start: {manager.run('service', 'ps', '--no-trunc', service).stdout}")


@pytest.mark.timeout(600)
def test_sites_on_two_nodes_are_placed_by_label_and_talk_by_name(two_nodes: tuple[docker.Engine, docker.Engine]
                                                                   ) -> None:
    manager, worker = two_nodes
    found = docker.nodes(manager)
    assert len(found) == 2
    assert all(n.ready for n in found)
    ids = {manager.info()["Swarm"]["NodeID"]: "IHEP", worker.info()["Swarm"]["NodeID"]: "CNAF"}

    # no node carries the sites yet: `up` would stop here, naming them and deploying nothing
    with pytest.raises(ConfigError, match=r"IHEP, CNAF but no ready swarm node carries juno\.site\.IHEP=true"):
        docker.place_sites(manager, ["IHEP", "CNAF"])
    for node, site in ids.items():
        manager.run("node", "update", "--label-add", f"{docker.SITE_LABEL}{site}=true", node)
    assert docker.place_sites(manager, ["IHEP", "CNAF"]) == []

    base = images.base_tag()
    manager.run("network", "create", "--driver", "overlay", "--attachable", "grid")
    for site, command in (("CNAF", ["sh", "-c", SERVER]), ("IHEP", ["sleep", "600"])):
        manager.run("service", "create", "--detach", "--name", site.lower(), "--network", "grid", "--constraint",
                    f"node.labels.{docker.SITE_LABEL}{site} == true", base, *command)
    for service, site in (("ihep", "IHEP"), ("cnaf", "CNAF")):
        task = node_of(manager, service)
        placed = manager.run("inspect", "--format", "{{.NodeID}}", task).stdout.strip()
        assert ids[placed] == site, (service, placed)

    # from the IHEP node's container to the CNAF node's service, by name, over the overlay network
    container = manager.run("ps", "-q", "--filter", "label=com.docker.swarm.service.name=ihep").stdout.split()[0]
    deadline = time.monotonic() + 60
    while True:
        answer = manager.run("exec", container, "bash", "-c", "exec 3<>/dev/tcp/tasks.cnaf/7000 && cat <&3",
                             check=False)
        if answer.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert answer.stdout.strip() == "hello from CNAF", answer.stderr
