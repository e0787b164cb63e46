"""The grid's stack spread over two swarm nodes (docs/deploy.md, "Sites and nodes"): CNAF's storage element and
Squid on a worker node in a network namespace of its own, every other site and the central services on the manager.
The services keep listening on their own node's loopback; the node gateways carry what crosses nodes. Checked with
the commands of the box: every service healthy, CNAF's programs really on the worker (their network namespace), a
data challenge whose copies to CNAF_DISK cross both ways (the transfer service asks CNAF's XRootD, which pulls from
IHEP's), condition data read through CNAF's Squid (whose parent is the conditions service on the manager), the
gateways refusing what is not theirs, and CNAF's node drained (its services stop, the rest runs on) and brought
back (its services return to it and a new challenge reaches CNAF_DISK). Slow (the grid's images on two engines, a
whole stack): `make test-swarm`."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from juno_dcs.grid.home import GridHome
from juno_dcs.settings import GridSettings
from juno_dcs.swarm import engine as docker
from juno_dcs.swarm import gateway, images
from juno_dcs.swarm.runner import stack_name
from tests.conftest import Grid, free_base_port
from tests.integration.test_grid_conditions import (
    test_a_tag_made_with_the_admin_commands_is_read_through_the_grid_squids as conditions_through_squids,
)
from tests.swarm.conftest import SUBNET, docker_host, namespace, place_one_site_apart, two_nodes
from tests.swarm.test_stack import wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.swarm]

REMOTE_SITE = "CNAF"


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory, grids_root: Path
           ) -> Iterator[tuple[Grid, docker.Engine, docker.Engine]]:
    grid_engine = docker.ensure_engine(GridSettings().docker_dir)
    tags = sorted(set(images.build(grid_engine).tags.values()))
    with two_nodes(tmp_path_factory.mktemp("nodes"), grid_engine, tags) as (manager, worker):
        place_one_site_apart(manager, worker, REMOTE_SITE)
        grid = Grid(home=grids_root / "spread", base_port=free_base_port())
        with docker_host(manager.host):  # `up` deploys on the test's swarm; the home remembers it
            proc = grid.up("--engine", "swarm", check=False)
            if proc.returncode != 0:
                grid.juno_dcs("down", "--purge", check=False)
                raise AssertionError(f"up --engine swarm failed:\n{proc.stdout}\n{proc.stderr}")
            yield grid, manager, worker
            grid.juno_dcs("down", "--purge", check=False)


def node_of_service(manager: docker.Engine, service: str) -> set[str]:
    tasks = manager.run("service", "ps", "-q", "--filter", "desired-state=running", service).stdout.split()
    return {manager.run("inspect", "--format", "{{.NodeID}}", t).stdout.strip() for t in tasks}


def net_namespace_of(command_part: str) -> set[str]:
    """The network namespaces of the processes whose command line holds `command_part`."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if command_part in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.add(os.readlink(proc / "ns" / "net"))
        except OSError:
            continue
    return found


@pytest.mark.timeout(3600)
def test_sites_run_on_their_nodes_and_the_grid_is_healthy(spread: tuple[Grid, docker.Engine, docker.Engine]
                                                          ) -> None:
    grid, manager, worker = spread
    status = wait_healthy(grid)
    processes = status["processes"]
    assert isinstance(processes, dict)
    assert {"gateway-1", "gateway-2"} <= set(processes)
    stack = stack_name(GridHome(grid.home))
    worker_id, manager_id = worker.info()["Swarm"]["NodeID"], manager.info()["Swarm"]["NodeID"]
    assert node_of_service(manager, f"{stack}_xrootd-CNAF_DISK") == {worker_id}
    assert node_of_service(manager, f"{stack}_squid-CNAF") == {worker_id}
    assert node_of_service(manager, f"{stack}_xrootd-IHEP_DISK") == {manager_id}
    assert node_of_service(manager, f"{stack}_rucio-server") == {manager_id}

    # CNAF's XRootD listens in the worker's network namespace, IHEP's in this machine's
    ours = os.readlink("/proc/self/ns/net")
    cnaf, ihep = net_namespace_of("-n CNAF_DISK -c"), net_namespace_of("-n IHEP_DISK -c")
    assert cnaf
    assert ours not in cnaf
    assert ihep == {ours}

    plan = gateway.load_plan(grid.home / "etc" / "gateway.yaml")
    members = {m.node: m for m in plan.members}
    assert members[worker_id].address == f"{SUBNET}.2"
    assert members[worker_id].sites == (REMOTE_SITE,)
    assert members[manager_id].address == f"{SUBNET}.1"


@pytest.mark.timeout(900)
def test_a_data_challenge_reaches_the_other_node(spread: tuple[Grid, docker.Engine, docker.Engine]) -> None:
    grid, _, _ = spread
    proc = grid.juno_dcs("challenge", "--files", "3", "--size", "20MB", "--mode", "parallel", "--json")
    result = json.loads(proc.stdout)
    links = {link["destination"]: link for link in result["links"]}
    assert set(links) == {"CNAF_DISK", "JINR_DISK", "IN2P3_DISK"}
    assert links["CNAF_DISK"]["files"] == 3
    assert links["CNAF_DISK"]["bytes"] == 3 * 20_000_000
    assert result["cleaned"]


def test_condition_data_through_the_other_nodes_squid(spread: tuple[Grid, docker.Engine, docker.Engine],
                                                      tmp_path: Path) -> None:
    conditions_through_squids(spread[0], tmp_path)


def test_the_gateways_carry_only_the_grids_services(spread: tuple[Grid, docker.Engine, docker.Engine]) -> None:
    grid, _, worker = spread
    plan = gateway.load_plan(grid.home / "etc" / "gateway.yaml")
    far = plan.member(worker.info()["Swarm"]["NodeID"])
    # without the gateways' certificate the worker's gateway does not let a connection through
    context = ssl.create_default_context(cafile=str(plan.ca))
    context.check_hostname = False
    with socket.create_connection((far.address, plan.port), 5) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                tls.sendall(gateway.GREETING + f"{far.ports[0]}\n".encode())
                answer = tls.recv(100)
        except (ssl.SSLError, ConnectionError):
            answer = b""
    assert answer == b""
    # from the worker's namespace: the central services' ports are offered by its gateway, what is no service of
    # the stack (this machine's PostgreSQL) is not
    state = grid.state()
    rucio, postgres = int(state["base_port"]), 5432  # type: ignore[call-overload]
    probe = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5).close()"
    for port, reachable in ((rucio, True), (postgres, False)):
        proc = subprocess.run(["nsenter", f"--net=/var/run/netns/{namespace()}", sys.executable, "-c", probe,
                               str(port)], capture_output=True, text=True, check=False)
        assert (proc.returncode == 0) == reachable, (port, proc.stderr[-300:])


@pytest.mark.timeout(1200)
def test_the_other_sites_node_drained_and_brought_back(spread: tuple[Grid, docker.Engine, docker.Engine]) -> None:
    grid, manager, worker = spread
    node = worker.info()["Swarm"]["NodeID"]
    stack = stack_name(GridHome(grid.home))
    cnaf_port = int(gateway.load_plan(grid.home / "etc" / "gateway.yaml").member(node).ports[0])
    manager.run("node", "update", "--availability", "drain", node)
    try:
        deadline = time.monotonic() + 180
        while node_of_service(manager, f"{stack}_xrootd-CNAF_DISK") and time.monotonic() < deadline:
            time.sleep(2)
        assert not node_of_service(manager, f"{stack}_xrootd-CNAF_DISK")

        def storage_answers(status: dict[str, object]) -> bool:
            health = status["health"]
            assert isinstance(health, dict)
            return bool(health["storage"]["ok"])

        # the tasks are told to stop at once; their containers take their stop grace to go
        status = grid.status()
        while storage_answers(status) and time.monotonic() < deadline:
            time.sleep(2)
            status = grid.status()
        assert not status["healthy"]
        assert not storage_answers(status)
        # CNAF's storage elements, and only they
        assert status["health"]["storage"]["detail"] == "no TLS answer: CNAF_DISK, CNAF_TAPE"  # type: ignore[index]
        processes = status["processes"]
        assert isinstance(processes, dict)
        assert processes["xrootd-CNAF_DISK"]["state"] != "RUNNING"
        assert processes["rucio-server"]["state"] == "RUNNING"  # the rest of the grid runs on
        # CNAF's port on this node is the gateway's: with the other node gone it takes the connection and closes
        # it at once, rather than leaving the client waiting
        with socket.create_connection(("127.0.0.1", cnaf_port), 5) as conn:
            conn.settimeout(20)
            assert conn.recv(10) == b""
    finally:
        manager.run("node", "update", "--availability", "active", node)
    wait_healthy(grid)
    assert node_of_service(manager, f"{stack}_xrootd-CNAF_DISK") == {node}
    assert node_of_service(manager, f"{stack}_pilot-factory-CNAF") == {node}
    # the site is back: a new challenge's files reach CNAF_DISK, each once
    result = json.loads(grid.juno_dcs("challenge", "--files", "3", "--size", "20MB", "--mode", "parallel",
                                      "--json").stdout)
    links = {link["destination"]: link for link in result["links"]}
    assert links["CNAF_DISK"]["files"] == 3
    assert links["CNAF_DISK"]["bytes"] == 3 * 20_000_000
