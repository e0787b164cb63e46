"""`juno-dcs up --engine swarm`: what comes before the stack is deployed (the engine, the swarm, the nodes'
sites, the images) and the stack file itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from juno_dcs.grid import cache, storage
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.programs import Program
from juno_dcs.grid.render import write_if_changed
from juno_dcs.settings import GridSettings
from juno_dcs.swarm import engine as docker
from juno_dcs.swarm import images, stack
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
            programs: Sequence[Program]) -> list[str]:
    """Make the engine a swarm manager, give every site of the topology a node, build the images that are
    missing and write the stack file (home/etc/stack.yml). Deploys nothing."""
    done = docker.ensure_swarm(engine)
    done += docker.place_sites(engine, sorted({stack.site_of(p.name, topo) for p in programs}))
    built = images.build(engine)
    done += [f"built image {tag}" for tag in built.built]
    spec = stack.render(programs, built.tags, topo, home.root, home.logs, mounts(home, settings),
                        settings.swarm_replicas)
    if write_if_changed(stack_file(home), yaml.safe_dump(spec, sort_keys=False), 0o600):
        done.append(f"wrote {stack_file(home)}")
    return done


def stack_file(home: GridHome) -> Path:
    return home.etc / "stack.yml"
