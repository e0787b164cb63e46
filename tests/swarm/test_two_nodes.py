"""Two swarm nodes on one machine (docs/deploy.md, "Sites and nodes"): a second Docker engine in a network namespace
of its own, joined over a veth pair to a manager, each node labelled with its sites. The placement constraints of
the stack put a site's service on its node, the swarm's overlay network carries traffic between the nodes by service
name, and `up`'s check refuses sites that no node carries. Both engines are the test's own (the grid's engine is
not touched); the veth pair's addresses are the test's own hosts. Slow: `make test-swarm`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from juno_dcs.errors import ConfigError
from juno_dcs.settings import GridSettings
from juno_dcs.swarm import engine as docker
from juno_dcs.swarm import images
from tests.swarm.conftest import two_nodes

pytestmark = [pytest.mark.slow, pytest.mark.swarm]

SERVER = ("perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => 7000, Listen => 5, ReuseAddr => 1) "
          "or die; while ($c = $s->accept) { print $c \"hello from CNAF\\n\"; close $c }'")


@pytest.fixture
def nodes_with_base(tmp_path: Path) -> Iterator[tuple[docker.Engine, docker.Engine]]:
    grid_engine = docker.ensure_engine(GridSettings().docker_dir)
    base = images.build_base(grid_engine, images.BuildReport())
    with two_nodes(tmp_path, grid_engine, [base]) as pair:
        yield pair


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
def test_sites_on_two_nodes_are_placed_by_label_and_talk_by_name(nodes_with_base: tuple[docker.Engine, docker.Engine]
                                                                   ) -> None:
    manager, worker = nodes_with_base
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
