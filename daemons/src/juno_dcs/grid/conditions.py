"""The grid's condition data: a MariaDB database per grid home, the read-only conditions service on B+40 and one
Squid per data centre (the topology's tier-0 and tier-1 sites, in its order) on B+41.. in front of it.

    home/etc/conditions.yaml          the service: the read-only account's URL, cache lifetimes (0600)
    home/etc/conditions-admin.yaml    the writing account's URL, for `juno-dcs conditions` (0600)
    SERVICE_ROOT/squid/<SITE>/        squid.conf, cache/, logs/access.log and cache.log, squid.pid
                                      (the home itself, or its service area: juno_dcs.grid.access)

The MariaDB database is `<db_name>_cond` with the accounts `<db_name>_r` (SELECT) and `<db_name>_w` (SELECT,
INSERT, UPDATE), made idempotently through `mysql_admin_url` at every `up` and dropped by `down --purge`.
The pieces themselves live in juno_dcs.conditions.grid; this module fits them to the grid's home and state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

from juno_dcs.conditions import grid as cond
from juno_dcs.grid.health import Health
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.settings import GridSettings
from juno_dcs.topology import Topology


def data_centres(topo: Topology) -> list[str]:
    """The sites that get a Squid: tier 0 and tier 1, in the topology's order (IHEP first)."""
    return [name for name, site in topo.sites.items() if site.tier <= 1]


@dataclass(frozen=True)
class ConditionsLayout:
    service_port: int
    squids: dict[str, int]  # site -> port
    homes: dict[str, cond.SquidHome]
    service_config: Path
    admin_config: Path

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    def squid_url(self, site: str) -> str:
        return f"http://127.0.0.1:{self.squids[site]}"


def layout(home: GridHome, state: GridState, topo: Topology) -> ConditionsLayout:
    squids = cond.squid_ports(state.base_port, data_centres(topo))
    return ConditionsLayout(
        service_port=state.ports.port("conditions"),
        squids=squids,
        homes={site: cond.SquidHome(home.squid_root / site) for site in squids},
        service_config=home.etc / "conditions.yaml",
        admin_config=home.etc / "conditions-admin.yaml",
    )


def running_layout(home: GridHome, state: GridState) -> ConditionsLayout:
    """The layout as the home's Squid configurations record it (for `status`, without the topology)."""
    squids: dict[str, int] = {}
    homes: dict[str, cond.SquidHome] = {}
    root = home.squid_root
    for conf in sorted(root.glob("*/squid.conf")) if root.is_dir() else []:
        for line in conf.read_text().splitlines():
            if line.startswith("http_port 127.0.0.1:"):
                site = conf.parent.name
                squids[site] = int(line.split()[1].rpartition(":")[2])
                homes[site] = cond.SquidHome(conf.parent)
                break
    return ConditionsLayout(service_port=state.ports.port("conditions"), squids=squids, homes=homes,
                            service_config=home.etc / "conditions.yaml",
                            admin_config=home.etc / "conditions-admin.yaml")


def render_configs(where: ConditionsLayout, state: GridState, settings: GridSettings) -> dict[Path, str]:
    """Every conditions config file of the grid, by path (secrets inside: written 0600)."""
    reader = cond.database_url(settings.mysql_admin_url, state.conditions_db, state.conditions_reader,
                               state.conditions_reader_password)
    writer = cond.database_url(settings.mysql_admin_url, state.conditions_db, state.conditions_writer,
                               state.conditions_writer_password)
    files = {
        where.service_config: cond.render_service_config(reader, open_max_age=settings.conditions_open_max_age),
        where.admin_config: cond.render_admin_config(writer),
    }
    for site, port in where.squids.items():
        squid = where.homes[site]
        files[squid.conf] = cond.render_squid_config(site, port, where.service_port, squid.root)
    return files


def prepare(where: ConditionsLayout, state: GridState, settings: GridSettings) -> list[str]:
    """Before the programs start: the database and its accounts, the Squids' directories and caches."""
    done = []
    if cond.ensure_database(settings.mysql_admin_url, state.conditions_db, state.conditions_reader,
                            state.conditions_reader_password, state.conditions_writer,
                            state.conditions_writer_password):
        done.append(f"created the conditions database {state.conditions_db} on MariaDB")
    for site, squid in where.homes.items():
        cond.prepare_squid_home(squid)
        if cond.init_squid(squid):
            done.append(f"initialised the Squid cache of {site}")
    return done


def purge(settings: GridSettings, state: GridState) -> None:
    cond.drop_database(settings.mysql_admin_url, state.conditions_db, state.conditions_reader,
                       state.conditions_writer)


def _problem(url: str, timeout: float) -> str | None:
    """What is wrong with `url`/health (None: it answers 200)."""
    try:
        answer = requests.get(f"{url}/health", timeout=timeout)
    except requests.RequestException as exc:
        return exc.__class__.__name__
    return None if answer.status_code == 200 else f"HTTP {answer.status_code}"


def check_squid(where: ConditionsLayout, site: str, timeout: float = 3.0) -> Health:
    """The conditions service answers /health through the Squid of `site`."""
    problem = _problem(where.squid_url(site), timeout)
    if problem is None:
        return Health(True, "the service answers through it")
    return Health(False, problem if problem.startswith("HTTP") else f"no answer: {problem}")


def check(where: ConditionsLayout, timeout: float = 3.0) -> Health:
    """The service answers /health (it reaches its database), directly and through every Squid."""
    targets = {"service": where.service_url, **{f"squid {s}": where.squid_url(s) for s in where.squids}}
    bad = [f"{name}: {problem}" for name, url in targets.items() if (problem := _problem(url, timeout))]
    if bad:
        return Health(False, "; ".join(bad))
    return Health(True, f"service and {len(where.squids)} Squids ({', '.join(where.squids)}) answer")
