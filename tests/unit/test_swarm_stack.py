"""The grid's programs as a Docker stack (juno_dcs.swarm.stack): placement by the topology, the doubled
services, health checks, logs and mounts. Pure logic; the deployment itself is tests/integration/test_swarm.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from juno_dcs.grid.programs import Program
from juno_dcs.swarm import engine, images, stack
from juno_dcs.topology import load_topology

TOPOLOGY = Path(__file__).parents[2] / "daemons" / "src" / "juno_dcs" / "data" / "topology.yaml"
HOME = Path("/srv/grid")


@pytest.fixture(scope="module")
def topo():
    return load_topology(TOPOLOGY)


def programs() -> list[Program]:
    return [
        Program(name="rucio-server", command=["/x/gunicorn", "--bind", "127.0.0.1:23000", "app"]),
        Program(name="rucio-judge-evaluator", command=["/x/rucio-judge-evaluator"], stopwaitsecs=20),
        Program(name="xrootd-CNAF_DISK", command=["/usr/bin/xrootd", "-n", "CNAF_DISK"], directory=Path("/srv/adm")),
        Program(name="squid-JINR", command=["/usr/sbin/squid", "-N"]),
        Program(name="fts-server", command=["/x/juno-fts", "serve", "--port", "23030"]),
        Program(name="activemq", command=["/usr/bin/java", "-jar", "activemq.jar"], stopwaitsecs=20),
        Program(name="pilot-factory", command=["/x/juno-pilot", "factory"], stopwaitsecs=60),
    ]


def render(topo):
    mounts = stack.Mounts(writable=(HOME,), readonly=(Path("/srv/pki"),))
    tags = {role: f"juno-dcs/{role}:abc" for role in images.ROLES}
    return stack.render(programs(), tags, topo, HOME, HOME / "logs", mounts)


def test_every_role_of_the_grid_has_an_image():
    for p in programs():
        assert stack.role_of(p.name) in images.ROLES


def test_sites_place_storage_and_squids_and_the_rest_at_the_tier0(topo):
    services = render(topo)["services"]
    centre = stack.central_site(topo)
    assert topo.sites[centre].tier == 0

    def where(name):
        return services[name]["deploy"]["placement"]["constraints"]

    assert where("xrootd-CNAF_DISK") == [f"node.labels.juno.site.{topo.rses['CNAF_DISK'].site} == true"]
    assert where("squid-JINR") == ["node.labels.juno.site.JINR == true"]
    assert where("rucio-server") == [f"node.labels.juno.site.{centre} == true"]
    assert services["xrootd-CNAF_DISK"]["image"] == "juno-dcs/storage:abc"
    assert services["rucio-judge-evaluator"]["image"] == "juno-dcs/rucio-daemons:abc"


def test_doubled_services_and_shared_ports(topo):
    services = render(topo)["services"]
    assert services["rucio-server"]["deploy"]["replicas"] == 2
    assert services["rucio-judge-evaluator"]["deploy"]["replicas"] == 2
    assert services["activemq"]["deploy"]["replicas"] == 1
    assert services["pilot-factory"]["deploy"]["replicas"] == 1
    # two servers on one port: gunicorn's and the services' own --reuse-port
    assert services["rucio-server"]["command"][-1] == "--reuse-port"
    assert services["fts-server"]["command"][-1] == "--reuse-port"
    assert "--reuse-port" not in services["activemq"]["command"]


def test_health_checks_on_listening_ports_only(topo):
    services = render(topo)["services"]
    assert "23000" in services["rucio-server"]["healthcheck"]["test"][-1]
    assert "23030" in services["fts-server"]["healthcheck"]["test"][-1]
    assert "healthcheck" not in services["rucio-judge-evaluator"]


def test_logs_mounts_restart_and_rollback(topo):
    spec = render(topo)
    svc = spec["services"]["xrootd-CNAF_DISK"]
    # the program's own command line after the log redirection, in its own directory
    assert svc["command"][:2] == ["/bin/sh", "-c"]
    assert svc["command"][4:] == programs()[2].command
    assert svc["working_dir"] == "/srv/adm"
    # `docker stack deploy` would substitute the script's variables from the caller's environment
    assert '"$$@"' in svc["command"][2]
    assert "$JUNO" not in svc["command"][2].replace("$$", "")
    assert svc["environment"]["JUNO_DCS_LOG_DIR"] == "/srv/grid/logs"
    assert svc["environment"]["JUNO_DCS_SLOT"] == "{{.Task.Slot}}"
    assert {"type": "bind", "source": "/srv/grid", "target": "/srv/grid"} in svc["volumes"]
    assert {"type": "bind", "source": "/srv/pki", "target": "/srv/pki", "read_only": True} in svc["volumes"]
    assert svc["deploy"]["restart_policy"]["condition"] == "any"
    assert svc["deploy"]["update_config"]["failure_action"] == "rollback"
    assert spec["services"]["pilot-factory"]["stop_grace_period"] == "60s"
    assert spec["networks"]["hostnet"] == {"external": True, "name": "host"}


def test_the_budget_counts_each_replica(topo):
    counted = [p.name for p in stack.expanded(programs())]
    assert counted.count("rucio-server") == 2
    assert counted.count("activemq") == 1


def test_service_names_are_what_docker_accepts():
    assert stack.service_name("xrootd-IHEP_DISK") == "xrootd-IHEP_DISK"
    assert stack.service_name("squid-a.b") == "squid-a-b"


def test_requirements_leave_out_the_projects_own_distributions():
    found = images.requirements(Path(__file__).parents[2])
    assert any(r.startswith("rucio[postgresql]") for r in found)
    assert not [r for r in found if r.startswith("juno-")]


def test_a_site_without_a_ready_node_is_named():
    nodes = [engine.Node("a", "ihep-1", True, frozenset({"IHEP"})),
             engine.Node("b", "eu-1", False, frozenset({"CNAF"})),
             engine.Node("c", "eu-2", True, frozenset({"JINR", "IN2P3"}))]
    assert engine.unplaced(nodes, ["IHEP", "CNAF", "JINR", "IN2P3", "MSU"]) == ["CNAF", "MSU"]
    assert engine.unplaced(nodes, ["IHEP", "JINR"]) == []


def test_the_replicas_of_what_can_run_more_than_once_are_a_setting(topo):
    mounts = stack.Mounts(writable=(HOME,), readonly=())
    tags = {role: f"juno-dcs/{role}:abc" for role in images.ROLES}
    services = stack.render(programs(), tags, topo, HOME, HOME / "logs", mounts, doubled=1)["services"]
    assert {s["deploy"]["replicas"] for s in services.values()} == {1}
    assert [p.name for p in stack.expanded(programs(), 3)].count("rucio-judge-evaluator") == 3


def node(ident, sites, address="10.0.0.1", ready=True):
    return engine.Node(id=ident, hostname=f"host-{ident}", ready=ready, sites=frozenset(sites), address=address)


def spread(found, sites=("IHEP", "CNAF", "JINR")):
    from juno_dcs.swarm import deploy

    ports = {"IHEP": [23000, 23033, 23040], "CNAF": [23011, 23042], "JINR": [23012, 23043]}
    return deploy.spread_plan(found, list(sites), ports, 23034, Path("/g/gw.pem"), Path("/g/gw.key"),
                              Path("/pki/ca.pem"))


def test_one_node_needs_no_gateway():
    assert spread([node("a", {"IHEP", "CNAF", "JINR"})]) is None
    # a second node that carries none of the grid's sites changes nothing
    assert spread([node("a", {"IHEP", "CNAF", "JINR"}), node("b", {"MSU"}, "10.0.0.2")]) is None


def test_sites_spread_over_nodes_are_served_by_their_node():
    plan = spread([node("a", {"IHEP", "JINR"}), node("b", {"CNAF"}, "10.0.0.2"), node("c", set(), "10.0.0.3")])
    assert [(m.node, m.address, m.sites, m.ports) for m in plan.members] == [
        ("a", "10.0.0.1", ("IHEP", "JINR"), (23000, 23012, 23033, 23040, 23043)),
        ("b", "10.0.0.2", ("CNAF",), (23011, 23042)),
    ]
    assert set(plan.remote("b")) == {23000, 23012, 23033, 23040, 23043}


def test_a_site_on_two_nodes_or_a_node_without_address_is_refused():
    from juno_dcs.errors import ConfigError

    with pytest.raises(ConfigError, match=r"site CNAF is on 2 nodes \(host-b b, host-c c\).*on one node only"):
        spread([node("a", {"IHEP", "JINR"}), node("b", {"CNAF"}, "10.0.0.2"), node("c", {"CNAF"}, "10.0.0.3")])
    # a node that is down does not count as a carrier
    assert spread([node("a", {"IHEP", "JINR"}), node("b", {"CNAF"}, "10.0.0.2"),
                   node("c", {"CNAF"}, "10.0.0.3", ready=False)]) is not None
    with pytest.raises(ConfigError, match=r"swarm node host-b .* reports no address"):
        spread([node("a", {"IHEP", "JINR"}), node("b", {"CNAF"}, "")])


def test_a_managers_address_comes_from_its_manager_status():
    assert engine.node_address({"Status": {"Addr": "10.77.0.2"}}) == "10.77.0.2"
    manager = {"Status": {"Addr": "0.0.0.0"}, "ManagerStatus": {"Addr": "10.77.0.1:2377"}}  # noqa: S104
    assert engine.node_address(manager) == "10.77.0.1"
    assert engine.node_address({"Status": {}}) == ""


def test_each_node_gets_its_gateway_pinned_by_id(topo):
    plan = spread([node("a", {"IHEP", "JINR"}), node("b", {"CNAF"}, "10.0.0.2")])
    mounts = stack.Mounts(writable=(HOME,), readonly=(Path("/srv/pki"),))
    tags = {role: f"juno-dcs/{role}:abc" for role in images.ROLES}
    services = stack.gateways(plan, HOME / "etc" / "gateway.yaml", tags, HOME, HOME / "logs", mounts)
    assert sorted(services) == ["gateway-1", "gateway-2"]
    second = services["gateway-2"]
    assert second["deploy"]["placement"]["constraints"] == ["node.id == b"]
    assert second["deploy"]["replicas"] == 1
    assert second["environment"]["JUNO_DCS_NODE"] == "b"
    assert second["networks"] == ["hostnet"]
    assert "--check" in second["healthcheck"]["test"]
    assert str(HOME / "etc" / "gateway.yaml") in second["command"]
    # another plan (a node's new address) restarts the gateways
    moved = spread([node("a", {"IHEP", "JINR"}), node("b", {"CNAF"}, "10.0.0.9")])
    again = stack.gateways(moved, HOME / "etc" / "gateway.yaml", tags, HOME, HOME / "logs", mounts)
    assert again["gateway-2"]["environment"] != second["environment"]


def test_each_node_runs_the_pilot_factory_of_its_sites(topo):
    services = render(topo)["services"]
    plan = spread([node("a", {"IHEP", "JINR"}), node("b", {"CNAF"}, "10.0.0.2")])
    stack.spread_factories(services, plan, "IHEP")
    central, cnaf = services["pilot-factory"], services["pilot-factory-CNAF"]
    assert central["command"][-2:] == ["--skip-site", "CNAF"]
    assert central["deploy"]["placement"]["constraints"] == ["node.labels.juno.site.IHEP == true"]
    assert cnaf["command"][-2:] == ["--site", "CNAF"]
    assert cnaf["deploy"]["placement"]["constraints"] == ["node.id == b"]
    assert cnaf["environment"]["JUNO_DCS_PROGRAM"] == "pilot-factory-CNAF"
    assert cnaf["stop_grace_period"] == central["stop_grace_period"]
