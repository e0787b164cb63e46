"""The grid's programs as a Docker stack (Compose specification, version 3.8): one service per program.

Every service runs the program's own command line from the box's supervisor (grid/programs.py) in its role's
image, on the host's network, with the grid's home mounted at the same path: the stack and the box share one
rendered home, the same loopback addresses and the same commands (`status`, `env`, `raw status`, `jsub`, ...).
Placement follows the topology: a site's storage elements and Squid run on a node labelled
`juno.site.<SITE>=true`; the central services on the tier-0 site's node.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from juno_dcs.grid.programs import Program, venv_bin
from juno_dcs.swarm.engine import SITE_LABEL
from juno_dcs.swarm.gateway import Plan
from juno_dcs.topology import Topology

# Programs that run twice (settings.swarm_replicas; 2 by default). Rucio's daemons share their work through
# heartbeats (each instance takes its hash share), the transfer workers claim jobs row by row, the ingestors form
# one Kafka consumer group, the servers share one port through SO_REUSEPORT (`--reuse-port`), hermes and the
# conveyor's receiver act once per message however many run. What runs once, and why, is in docs/deploy.md.
DOUBLED: frozenset[str] = frozenset({
    "rucio-server",
    "rucio-judge-evaluator", "rucio-judge-repairer", "rucio-judge-cleaner", "rucio-judge-injector",
    "rucio-reaper", "rucio-undertaker", "rucio-abacus-account", "rucio-abacus-rse",
    "rucio-abacus-collection-replica", "rucio-transmogrifier", "rucio-hermes",
    "rucio-conveyor-submitter", "rucio-conveyor-poller", "rucio-conveyor-finisher", "rucio-conveyor-receiver",
    "fts-server", "fts-worker", "ingest", "wms-server", "wms-agent", "probes", "issuer",
})
# The servers among them: `--reuse-port` (gunicorn's, and juno_dcs.asgiserve's) lets two processes listen on one port.
SHARED_PORT: frozenset[str] = frozenset({"rucio-server", "fts-server", "wms-server", "issuer"})


def role_of(name: str) -> str:
    """The image (role) a program runs from: images.ROLES."""
    if name == "rucio-server":
        return "rucio-server"
    if name.startswith("rucio-"):
        return "rucio-daemons"
    if name.startswith("xrootd-"):
        return "storage"
    if name.startswith("squid-"):
        return "squid"
    if name in ("kafka", "zookeeper"):
        return "kafka"
    if name == "activemq":
        return "activemq"
    if name in ("webui", "nginx"):
        return "webui"
    if name == "pilot-factory":
        return "pilot"
    return "services"


def central_site(topo: Topology) -> str:
    tier0 = sorted(name for name, site in topo.sites.items() if site.tier == 0)
    return tier0[0] if tier0 else sorted(topo.sites)[0]


def site_of(name: str, topo: Topology) -> str:
    """Where a program runs: an SE at its RSE's site, a Squid at its own, everything else at the centre."""
    if name.startswith("xrootd-") and name.removeprefix("xrootd-") in topo.rses:
        return topo.rses[name.removeprefix("xrootd-")].site
    if name.startswith("squid-") and name.removeprefix("squid-") in topo.sites:
        return name.removeprefix("squid-")
    return central_site(topo)


def service_name(program: str) -> str:
    """A Docker service name: letters, digits, '-' and '_' (RSE names carry none of the rest)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", program)


def replicas(name: str, doubled: int = 2) -> int:
    """The program's replicas: `doubled` (settings.swarm_replicas) for those that can run more than once."""
    return doubled if name in DOUBLED else 1


def port_of(program: Program) -> int | None:
    """The TCP port a program listens on, read off its command line, for its health check."""
    args = program.command
    for flag in ("--port", "--bind"):
        if flag in args[:-1]:
            port = args[args.index(flag) + 1].rsplit(":", 1)[-1]
            return int(port) if port.isdigit() else None
    return None


@dataclass(frozen=True)
class Mounts:
    """Host paths every container sees at the same path: the home (read-write), the CA and the operator's files
    (read-only)."""

    writable: tuple[Path, ...]
    readonly: tuple[Path, ...]

    def volumes(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"type": "bind", "source": str(p), "target": str(p)} for p in self.writable]
        out += [{"type": "bind", "source": str(p), "target": str(p), "read_only": True} for p in self.readonly]
        return out


def literal(text: str) -> str:
    """A string as the stack file must carry it: `docker stack deploy` substitutes $VARIABLES from the caller's
    environment; $$ is a literal $."""
    return text.replace("$", "$$")


def command(program: Program) -> list[str]:
    """The program's command line, writing to its log in the home ($JUNO_DCS_LOG_DIR) as under the supervisor (the
    second replica to NAME.2.log)."""
    argv = list(program.command)
    if program.name in SHARED_PORT and "--reuse-port" not in argv:
        argv.append("--reuse-port")
    script = ('log="$JUNO_DCS_LOG_DIR/$JUNO_DCS_PROGRAM.log"; '
              '[ "$JUNO_DCS_SLOT" = 1 ] || log="$JUNO_DCS_LOG_DIR/$JUNO_DCS_PROGRAM.$JUNO_DCS_SLOT.log"; '
              'exec "$@" >>"$log" 2>&1')
    return [literal(arg) for arg in ["/bin/sh", "-c", script, program.name, *argv]]


def service(program: Program, image: str, site: str, home_root: Path, log_dir: Path,
            mounts: Mounts, doubled: int = 2) -> dict[str, Any]:
    env = {**program.environment, "JUNO_DCS_LOG_DIR": str(log_dir), "JUNO_DCS_PROGRAM": program.name,
           "JUNO_DCS_SLOT": "{{.Task.Slot}}"}
    spec: dict[str, Any] = {
        "image": image,
        "command": command(program),
        "working_dir": str(program.directory or home_root),
        "environment": {key: literal(value) for key, value in sorted(env.items())},
        "volumes": mounts.volumes(),
        "networks": ["hostnet"],
        "stop_grace_period": f"{program.stopwaitsecs}s",
        "deploy": {
            "mode": "replicated",
            "replicas": replicas(program.name, doubled),
            "placement": {"constraints": [f"node.labels.{SITE_LABEL}{site} == true"]},
            "restart_policy": {"condition": "any", "delay": "3s", "window": "30s"},
            # a change that does not come up is rolled back to the previous specification (`up` names it)
            "update_config": {"parallelism": 1, "order": "stop-first", "failure_action": "rollback",
                              "monitor": "20s"},
            "rollback_config": {"parallelism": 1, "order": "stop-first"},
            "labels": {"org.juno-dcs.program": program.name, "org.juno-dcs.site": site},
        },
    }
    port = port_of(program)
    if port is not None:
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 3).close()"
        spec["healthcheck"] = {"test": ["CMD", "python3", "-c", probe], "interval": "10s", "timeout": "5s",
                               "retries": 3, "start_period": "120s"}
    return spec


def render(programs: Sequence[Program], images: Mapping[str, str], topo: Topology, home_root: Path,
           log_dir: Path, mounts: Mounts, doubled: int = 2) -> dict[str, Any]:
    """The stack file's content (a dict; yaml.safe_dump writes it)."""
    services = {
        service_name(p.name): service(p, images[role_of(p.name)], site_of(p.name, topo), home_root, log_dir, mounts,
                                      doubled)
        for p in programs
    }
    return {
        "version": "3.8",
        "services": services,
        # the host's own network: the grid's loopback addresses mean the same inside and outside (docs/deploy.md)
        "networks": {"hostnet": {"external": True, "name": "host"}},
    }


def gateways(plan: Plan, plan_file: Path, images: Mapping[str, str], home_root: Path, log_dir: Path,
             mounts: Mounts) -> dict[str, Any]:
    """One gateway per node of a grid spread over several (swarm/gateway.py), pinned to its node by ID."""
    out = {}
    python = venv_bin("python")
    # a changed plan changes every gateway's specification, so `up` restarts them to read it
    digest = hashlib.sha256(json.dumps(plan.as_dict(), sort_keys=True).encode()).hexdigest()[:16]
    for i, member in enumerate(plan.members, 1):
        program = Program(name=f"gateway-{i}", command=[python, "-m", "juno_dcs.swarm.gateway", "--plan",
                                                        str(plan_file)],
                          environment={"JUNO_DCS_NODE": member.node, "JUNO_DCS_CONFIG_DIGEST": digest})
        spec = service(program, images["services"], member.sites[0], home_root, log_dir, mounts, doubled=1)
        spec["deploy"]["placement"]["constraints"] = [f"node.id == {member.node}"]
        spec["deploy"]["labels"]["org.juno-dcs.site"] = ",".join(member.sites)
        spec["healthcheck"] = {"test": ["CMD", python, "-m", "juno_dcs.swarm.gateway", "--plan", str(plan_file),
                                        "--check"],
                               "interval": "10s", "timeout": "5s", "retries": 3, "start_period": "30s"}
        out[service_name(program.name)] = spec
    return out


FACTORY = "pilot-factory"


def spread_factories(services: dict[str, Any], plan: Plan, centre: str) -> None:
    """On a grid spread over nodes, the pilot factory runs on every node for the sites of that node: the central
    node's keeps its name and skips the other nodes' sites (so it also serves sites without a node, whose queues
    are compute only); every other node's is `pilot-factory-<SITE>` for its own."""
    if FACTORY not in services:
        return
    base = services[FACTORY]
    remote = [m for m in plan.members if centre not in m.sites]
    for member in remote:
        spec = copy.deepcopy(base)
        name = service_name(f"{FACTORY}-{'-'.join(member.sites)}")
        spec["command"] = [*spec["command"], *(a for s in member.sites for a in ("--site", s))]
        spec["environment"]["JUNO_DCS_PROGRAM"] = name
        spec["deploy"]["placement"]["constraints"] = [f"node.id == {member.node}"]
        spec["deploy"]["labels"].update({"org.juno-dcs.program": name, "org.juno-dcs.site": ",".join(member.sites)})
        services[name] = spec
    base["command"] = [*base["command"], *(a for m in remote for s in m.sites for a in ("--skip-site", s))]


def expanded(programs: Sequence[Program], doubled: int = 2) -> list[Program]:
    """Each program once per replica: what the connection budget (grid/budget.py) counts."""
    return [p for p in programs for _ in range(replicas(p.name, doubled))]
