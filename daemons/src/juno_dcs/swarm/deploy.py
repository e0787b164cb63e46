"""`juno-dcs up --engine swarm`: what comes before the stack is deployed (the engine, the swarm, the nodes'
sites, the images) and the stack file itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from juno_dcs.errors import ConfigError, GridStateError
from juno_dcs.grid import cache, conditions, pki, storage
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.programs import Program
from juno_dcs.grid.render import write_if_changed
from juno_dcs.settings import GridSettings
from juno_dcs.swarm import configs, databases, gateway, images, stack
from juno_dcs.swarm import engine as docker
from juno_dcs.swarm.runner import stack_name
from juno_dcs.topology import Topology


def mounts(home: GridHome, settings: GridSettings) -> stack.Mounts:
    """What the containers see of the host, each at its own path: the home, the service users' area and the
    storage elements' admin directory (read-write); the CA, the topology and the policy files (read-only)."""
    writable = [home.root.resolve()]
    if home.service_root.resolve() != home.root.resolve():
        writable.append(home.service_root.resolve())
    if settings.storage == "xrootd":  # made by storage.prepare_xrootd, owned by xrootd
        writable.append(storage.admin_dir(home))
    writable.append(cache.socket_dir(home))  # Rucio's memcached socket (grid/cache.py)
    readonly = {settings.pki_dir.resolve(), settings.topology_file.resolve().parent, settings.placement_dir.resolve()}
    inside = [p for p in readonly if any(p.is_relative_to(w) for w in writable)]
    return stack.Mounts(writable=tuple(writable), readonly=tuple(sorted(readonly - set(inside))))


def prepare(settings: GridSettings, topo: Topology, home: GridHome, state: GridState, engine: docker.Engine,
            programs: Sequence[Program], built: images.BuildReport | None = None) -> list[str]:
    """Make the engine a swarm manager, give every site of the topology a node, build the images that are
    missing and write the stack file (home/etc/stack.yml). Deploys nothing."""
    done = docker.ensure_swarm(engine)
    sites = sorted({stack.site_of(p.name, topo) for p in programs})
    done += docker.place_sites(engine, sites)
    plan = gateway_plan(home, settings, state, topo, programs, docker.nodes(engine))
    if plan is not None:
        if pki.issue_host_cert(settings.pki_dir, plan.cert, plan.key, names=(gateway.PEER_NAME,)):
            done.append(f"issued the gateways' certificate {plan.cert}")
        if write_if_changed(gateway_file(home), yaml.safe_dump(plan.as_dict(), sort_keys=False), 0o600):
            done.append(f"wrote {gateway_file(home)} ({len(plan.members)} nodes)")
    if built is None:  # not yet built by databases_first in this `up`
        built = images.build(engine)
        done += [f"built image {tag}" for tag in built.built]
    spec = stack.render(programs, built.tags, topo, home.root, home.logs, mounts(home, settings),
                        settings.swarm_replicas)
    if state.databases == "stack":
        part = databases_part(home, state, topo, built.tags)
        spec["services"].update(part["services"])
        spec["volumes"], spec["secrets"] = part["volumes"], part["secrets"]
    if plan is not None:
        spec["services"].update(stack.gateways(plan, gateway_file(home), built.tags, home.root, home.logs,
                                               mounts(home, settings)))
        stack.spread_factories(spec["services"], plan, stack.central_site(topo))
    files = configs.candidates([home.etc], [sq.conf for sq in conditions.layout(home, state, topo).homes.values()])
    attached = configs.attach(spec["services"], files, too_wide=[home.etc, home.root])
    spec["configs"] = attached.configs
    spec["secrets"] = {**spec.get("secrets", {}), **attached.secrets}
    if write_if_changed(stack_file(home), yaml.safe_dump(spec, sort_keys=False), 0o600):
        done.append(f"wrote {stack_file(home)}")
    return done


def databases_part(home: GridHome, state: GridState, topo: Topology, tags: dict[str, str]) -> dict[str, object]:
    where = databases.Placement(site=stack.central_site(topo), images={n: tags[n] for n in databases.SERVICES})
    return databases.render(state, home, where)


def databases_first(settings: GridSettings, topo: Topology, home: GridHome, state: GridState,
                    engine: docker.Engine, programs: Sequence[Program],
                    created: bool) -> tuple[list[str], images.BuildReport]:
    """The stack's own PostgreSQL and MariaDB, deployed and answering before the rest of the home is rendered
    into them (roles, schemas, condition tables). A first deployment of the grid's stack with these two services
    only (no --prune: on a running grid the rest stays as it is); the full stack file carries them unchanged.
    Returns what was done and the images, which `prepare` then uses."""
    name = stack_name(home)
    if created:  # a new grid.json: an earlier grid's volumes would hold data it has no password for
        left = databases.leftover_volumes(engine, name)
        if left:
            raise GridStateError(
                f"the volumes {', '.join(left)} of an earlier grid at {home.root} are still there, and its "
                f"{home.state_file.name} (with their password) is gone. Nothing was deployed. Put the old "
                f"{home.state_file.name} back, or remove them (docker volume rm; their catalogue and condition "
                "data go with them).")
    done = docker.ensure_swarm(engine)
    done += docker.place_sites(engine, sorted({stack.site_of(p.name, topo) for p in programs}))
    built = images.build(engine)
    done += [f"built image {tag}" for tag in built.built]
    if databases.write_secret(home, state):
        done.append(f"wrote the databases' superuser password {databases.secret_file(home)}")
    part = {"version": "3.8", **databases_part(home, state, topo, built.tags),
            "networks": {"hostnet": {"external": True, "name": "host"}}}
    if write_if_changed(databases_file(home), yaml.safe_dump(part, sort_keys=False), 0o600):
        done.append(f"wrote {databases_file(home)}")
    engine.run("stack", "deploy", "--resolve-image", "never", "-c", str(databases_file(home)), name, timeout=300)
    databases.wait(state, engine, name, settings.start_timeout)
    return [*done, "the stack's PostgreSQL and MariaDB answer"], built


def program_ports(home: GridHome, state: GridState, topo: Topology, programs: Sequence[Program]) -> dict[str, int]:
    """The loopback port each program listens on, where it has one."""
    rses = storage.rse_ports(state, list(topo.rses))
    squids = conditions.layout(home, state, topo).squids
    ports = {}
    for p in programs:
        name = p.name
        port = (rses.get(name.removeprefix("xrootd-")) if name.startswith("xrootd-") else
                squids.get(name.removeprefix("squid-")) if name.startswith("squid-") else stack.port_of(p))
        if port is not None:
            ports[name] = port
    return ports


def gateway_plan(home: GridHome, settings: GridSettings, state: GridState, topo: Topology,
                 programs: Sequence[Program], found: Sequence[docker.Node]) -> gateway.Plan | None:
    """The gateways' plan when the grid's sites are on more than one node (None on one node)."""
    by_site: dict[str, list[int]] = {}
    for name, port in program_ports(home, state, topo, programs).items():
        by_site.setdefault(stack.site_of(name, topo), []).append(port)
    sites = sorted({stack.site_of(p.name, topo) for p in programs})
    return spread_plan(found, sites, by_site, state.ports.port("gateway"), home.pki / "gateway.pem",
                       home.pki / "gateway.key", settings.pki_dir / pki.CA_CERT)


def spread_plan(found: Sequence[docker.Node], sites: Sequence[str], ports_by_site: dict[str, list[int]], port: int,
                cert: Path, key: Path, ca: Path) -> gateway.Plan | None:
    """Which node serves which ports, when the sites are on more than one ready node (None on one). Each site must
    be on exactly one ready node: its services listen on that node's loopback, which the gateways carry."""
    carriers = {s: [n for n in found if n.ready and s in n.sites] for s in sites}
    nodes = {n.id: n for c in carriers.values() for n in c}
    if len(nodes) <= 1:
        return None
    shared = {s: c for s, c in carriers.items() if len(c) > 1}
    if shared:
        names = "; ".join(f"site {s} is on {len(c)} nodes ({', '.join(n.hostname + ' ' + n.id[:12] for n in c)})"
                          for s, c in sorted(shared.items()))
        raise ConfigError(f"{names}: when the grid spans several nodes, each site's label must be on one node "
                          "only (docker node update --label-rm ...); nothing was deployed")
    nowhere = [n for n in nodes.values() if not n.address]
    if nowhere:
        raise ConfigError(f"swarm node {nowhere[0].hostname} ({nowhere[0].id[:12]}) reports no address; "
                          "nothing was deployed")
    return gateway.make_plan(port, cert, key, ca, {n.id: n.address for n in nodes.values()},
                             {n.id: [s for s in sites if carriers[s][0].id == n.id] for n in nodes.values()},
                             ports_by_site)


def gateway_file(home: GridHome) -> Path:
    return home.etc / "gateway.yaml"


def databases_file(home: GridHome) -> Path:
    return home.etc / "stack-databases.yml"


def stack_file(home: GridHome) -> Path:
    return home.etc / "stack.yml"
