"""A swarm grid's own PostgreSQL (the Rucio catalogue, the dispatcher, the issuer, the probes) and MariaDB (the
condition data), as services of its stack (settings.swarm_databases = "stack", the default for a new swarm grid).

Each runs from an image of its own (docker/postgres.Dockerfile, docker/mariadb.Dockerfile), keeps its data on a
named volume that outlives the stack (`down` keeps it, `down --purge` removes it), listens on the central node's
loopback at the grid's ports "postgres" and "mariadb", and takes its superuser password from a Docker secret. The
secret is versioned: its name carries a digest of its content, so a changed password is a new secret and a rolled
back service gets the secret it started with.

They are deployed before the rest of the home is rendered (`up` creates the grid's roles and schemas in them), as a
first deployment of the same stack; the full stack file carries the same two services unchanged."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql  # type: ignore[import-untyped]

from juno_dcs.errors import ServiceError, ServiceTimeout
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.render import write_if_changed
from juno_dcs.swarm.engine import SITE_LABEL, Engine

SERVICES = ("postgres", "mariadb")
SECRET_TARGET = "db-admin"  # noqa: S105 - a file name; /run/secrets/db-admin in both containers
DATA_DIR = {"postgres": "/var/lib/juno-dcs/postgres", "mariadb": "/var/lib/juno-dcs/mariadb"}  # the volumes
MAX_CONNECTIONS = 600  # two replicas of every doubled program, with room (grid/budget.py checks the need)


def admin_urls(state: GridState) -> tuple[str, str]:
    """The superuser URLs of the stack's PostgreSQL and MariaDB (on the central node's loopback)."""
    pw = state.db_admin_password
    return (f"postgresql://postgres:{pw}@127.0.0.1:{state.ports.port('postgres')}/postgres",
            f"mysql+pymysql://root:{pw}@127.0.0.1:{state.ports.port('mariadb')}/")


def with_stack_databases(state: GridState) -> GridState:
    """A new swarm grid's state whose databases are its stack's own."""
    pg, my = admin_urls(state)
    return state.model_copy(update={"databases": "stack", "pg_admin_url": pg, "mysql_admin_url": my})


def secret_file(home: GridHome) -> Path:
    return home.secrets / "db-admin"


def volume_names(stack: str) -> list[str]:
    """The named volumes, as Docker calls them once a stack named `stack` made them."""
    return [f"{stack}_{name}-data" for name in SERVICES]


def secret_name(state: GridState) -> str:
    """The secret's name in the stack file: a new password is a new secret (Docker secrets cannot change)."""
    return "db-admin-" + hashlib.sha256(state.db_admin_password.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Placement:
    site: str  # the central site: the databases run beside the services that use them
    images: dict[str, str]  # "postgres" / "mariadb" -> image tag


def render(state: GridState, home: GridHome, where: Placement) -> dict[str, Any]:
    """The two services, their volumes and their secret: the part of the stack file they make."""
    ports = {name: state.ports.port(name) for name in SERVICES}
    services = {}
    for name in SERVICES:
        check = (["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(ports[name])] if name == "postgres" else
                 ["CMD", "mariadb-admin", "ping", "--silent", "-h", "127.0.0.1", "-P", str(ports[name])])
        services[name] = {
            "image": where.images[name],
            "environment": {"JUNO_DCS_DB_PORT": str(ports[name]), "JUNO_DCS_DB_MAX_CONNECTIONS": str(MAX_CONNECTIONS)},
            "volumes": [{"type": "volume", "source": f"{name}-data", "target": DATA_DIR[name]}],
            "secrets": [{"source": secret_name(state), "target": SECRET_TARGET, "mode": 0o400}],
            "networks": ["hostnet"],
            "stop_grace_period": "60s",
            "healthcheck": {"test": check, "interval": "5s", "timeout": "5s", "retries": 3, "start_period": "120s"},
            "deploy": {
                "mode": "replicated",
                "replicas": 1,  # one server per store: a second would be a replica set, not a second copy
                "placement": {"constraints": [f"node.labels.{SITE_LABEL}{where.site} == true"]},
                "restart_policy": {"condition": "any", "delay": "3s", "window": "30s"},
                "update_config": {"parallelism": 1, "order": "stop-first", "failure_action": "rollback",
                                  "monitor": "20s"},
                "rollback_config": {"parallelism": 1, "order": "stop-first"},
                "labels": {"org.juno-dcs.program": name, "org.juno-dcs.site": where.site},
            },
        }
    return {
        "services": services,
        "volumes": {f"{name}-data": {"labels": {"org.juno-dcs.home": str(home.root)}} for name in SERVICES},
        "secrets": {secret_name(state): {"file": str(secret_file(home))}},
    }


def write_secret(home: GridHome, state: GridState) -> bool:
    """The superuser password as the secret's source: a file only the grid's owner reads."""
    home.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    return write_if_changed(secret_file(home), state.db_admin_password, 0o600)


def answers(state: GridState) -> dict[str, str | None]:
    """Each database's problem (None: it accepts the superuser's login)."""
    pg, _ = admin_urls(state)
    out: dict[str, str | None] = {}
    try:
        psycopg.connect(pg, connect_timeout=3).close()
        out["postgres"] = None
    except psycopg.Error as exc:
        out["postgres"] = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    try:
        pymysql.connect(host="127.0.0.1", port=state.ports.port("mariadb"), user="root",
                        password=state.db_admin_password, connect_timeout=3).close()
        out["mariadb"] = None
    except pymysql.MySQLError as exc:
        out["mariadb"] = str(exc)
    return out


def wait(state: GridState, engine: Engine, stack: str, timeout: float) -> None:
    """Until both databases take the superuser's login; a service whose tasks keep failing is named at once."""
    deadline = time.monotonic() + timeout
    problems = answers(state)
    while any(problems.values()):
        for name, problem in problems.items():
            if problem is None:
                continue
            failed = engine.run("service", "ps", "--no-trunc", "--filter", "desired-state=shutdown", "--format",
                                "{{.Error}}", f"{stack}_{name}", check=False).stdout.split("\n")
            errors = [e for e in failed if e.strip()]
            if len(errors) >= 3:
                raise ServiceError(f"the stack's {name} does not start: {len(errors)} failed tasks, the last: "
                                   f"{errors[0].strip()} (docker service logs {stack}_{name})")
        if time.monotonic() > deadline:
            text = "; ".join(f"{n}: {p}" for n, p in problems.items() if p)
            raise ServiceTimeout(f"the stack's databases did not answer in {timeout:.0f} s ({text})")
        time.sleep(2)
        problems = answers(state)


def leftover_volumes(engine: Engine, stack: str) -> list[str]:
    """The databases' volumes of an earlier grid of this home (kept by `down` without --purge)."""
    found = engine.run("volume", "ls", "-q", check=False).stdout.split()
    return [v for v in volume_names(stack) if v in found]


def remove_volumes(engine: Engine, stack: str, timeout: float = 60.0) -> list[str]:
    """`down --purge`: the databases' volumes go with the grid (a volume is busy until its container is gone)."""
    removed, deadline = [], time.monotonic() + timeout
    for volume in leftover_volumes(engine, stack):
        while engine.run("volume", "rm", volume, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise ServiceTimeout(f"volume {volume} is still in use after {timeout:.0f} s")
            time.sleep(1)
        removed.append(volume)
    return removed
