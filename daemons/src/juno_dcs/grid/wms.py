"""The grid's workload management: the dispatcher (B+50) and its agent, the pilot factory and the production
manager, fitted to the grid's home, state and topology.

    home/etc/wms.yaml        the dispatcher and its agent (juno-wms serve|agent)
    home/etc/pilots.yaml     the pilot factory (juno-pilot factory); pilots work under home/data/pilots
    home/etc/prodsys.yaml    the production manager (juno-prod; `juno-dcs env` exports JUNO_PROD_CONFIG)

The files are made from typed objects (the components' own config models) and dumped as YAML, so a file the
grid writes is always one its component accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from juno_dcs.grid import database, pki
from juno_dcs.grid.conditions import ConditionsLayout
from juno_dcs.grid.health import Health
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.pilot.config import FactoryConfig, QueueConfig
from juno_dcs.prodsys.config import ProdConfig, RucioSettings
from juno_dcs.prodsys.events import EventsConfig
from juno_dcs.settings import GridSettings
from juno_dcs.topology.models import Topology
from juno_dcs.wms.config import WmsConfig

# Connections per pool (one for sync, one for async routes) and uvicorn worker of the dispatcher (grid/budget.py)
WMS_SERVER_POOL = 3


@dataclass(frozen=True)
class WmsLayout:
    dispatcher_port: int
    wms_config: Path
    factory_config: Path
    prodsys_config: Path
    pilot_root: Path
    events_password: Path  # the broker account `events` (reads Rucio's events only): the production manager's

    @property
    def dispatcher_url(self) -> str:
        return f"http://127.0.0.1:{self.dispatcher_port}"


def layout(home: GridHome, state: GridState) -> WmsLayout:
    return WmsLayout(
        dispatcher_port=state.ports.port("dispatcher"),
        wms_config=home.etc / "wms.yaml",
        factory_config=home.etc / "pilots.yaml",
        prodsys_config=home.etc / "prodsys.yaml",
        pilot_root=home.data / "pilots",
        events_password=home.secrets / "activemq-events",
    )


def database_url(state: GridState) -> str:
    host, port = database.pg_host_port(state.pg_admin_url)
    return f"postgresql://{state.db_user}:{state.db_password}@{host}:{port}/{state.db_name}"


def conditions_urls(topo: Topology, cond: ConditionsLayout) -> dict[str, list[str]]:
    """Per site, like a FroNTier client's list: the site's own Squid, then the tier 0's, then the server."""
    tier0 = sorted(s for s, site in topo.sites.items() if site.tier == 0 and s in cond.squids)
    urls: dict[str, list[str]] = {}
    for site in topo.sites:
        order = [s for s in [site, *tier0] if s in cond.squids]
        urls[site] = [cond.squid_url(s) for s in dict.fromkeys(order)] + [cond.service_url]
    return urls


def _dump(model: WmsConfig | FactoryConfig | ProdConfig, header: str) -> str:
    data = model.model_dump(mode="json", exclude_defaults=False)
    return f"# {header} Written by `juno-dcs up`; edits are overwritten (docs/wms.md lists the keys).\n" + \
        yaml.safe_dump(data, sort_keys=False)


def render_configs(where: WmsLayout, home: GridHome, state: GridState, settings: GridSettings, topo: Topology,
                   cond: ConditionsLayout) -> dict[Path, str]:
    """Every workload-management config file of the grid, by path (database passwords inside: 0600)."""
    from juno_dcs.grid import issuer  # here: grid.issuer imports grid.programs, which imports this module

    db = database_url(state)
    trust = pki.cert_dir(settings.pki_dir)
    topology = settings.topology_file.resolve()
    tokens = issuer.layout(home, state)  # a site's IAM would change only the issuer's URL (and its CA)
    wms = WmsConfig(
        database_url=db, topology=topology, retry_rules=settings.wms_retry_file.resolve(),
        error_rules=settings.wms_errors_file.resolve(),
        lease_s=settings.wms_lease, memory_scale=settings.wms_memory_scale, rucio=True,
        rucio_config=home.client_cfg("root"), agent_sleep_s=2.0, pool_size=WMS_SERVER_POOL,
        auth=issuer.service_auth(tokens, issuer.WMS_AUDIENCE), pilot_group=issuer.PILOTS,
        production_group=issuer.PRODUCTION,
    )
    factory = FactoryConfig(
        dispatcher_url=where.dispatcher_url, rucio_configs=home.etc / "clients", work_root=where.pilot_root,
        pilot_lifetime_s=settings.pilot_lifetime, sleep_s=3.0, default_max_pilots=settings.pilots_per_queue,
        queues={site: QueueConfig(enabled=False) for site, s in topo.sites.items() if not s.online},
        conditions_urls=conditions_urls(topo, cond),
        env={"X509_CERT_DIR": str(trust), "SSL_CERT_DIR": str(trust), "SSL_CERT_FILE": str(trust / "ca.pem")},
        stop_grace_s=30.0,
        # root://: XRootD 5.5.3's HTTPS front end stops accepting under many short davs sessions (docs/transfers.md)
        stage_scheme="root",
        auth=issuer.client_auth(tokens, "pilot"), dispatcher_audience=issuer.WMS_AUDIENCE,
    )
    prodsys = ProdConfig(
        database_url=db, dispatcher_url=where.dispatcher_url,
        rucio=RucioSettings(config=home.client_cfg("production"), account="production"),
        policies_dir=settings.placement_dir.resolve(), topology=topology, sleep=3.0,
        auth=issuer.client_auth(tokens, "production"), dispatcher_audience=issuer.WMS_AUDIENCE,
        events=EventsConfig(url=state.ports.url("activemq_stomp", "stomp"), username="events",
                            password_file=where.events_password),
        reconcile=settings.prodsys_reconcile,
    )
    return {
        where.wms_config: _dump(wms, "The dispatcher and its agent."),
        where.factory_config: _dump(factory, "The pilot factory."),
        where.prodsys_config: _dump(prodsys, "The production manager."),
        where.events_password: state.events_password + "\n",
    }


def check(where: WmsLayout, timeout: float = 3.0) -> Health:
    """The dispatcher answers its health endpoint."""
    try:
        reply = requests.get(f"{where.dispatcher_url}/v1/health", timeout=timeout)
        reply.raise_for_status()
    except requests.RequestException as exc:
        return Health(False, f"dispatcher: no answer ({exc.__class__.__name__})")
    return Health(True, "dispatcher answers")


def rucio_env(base: Mapping[str, str], home: GridHome, account: str) -> dict[str, str]:
    return {**base, "RUCIO_CONFIG": str(home.client_cfg(account))}
