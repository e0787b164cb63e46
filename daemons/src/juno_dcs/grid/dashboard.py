"""The grid's dashboard (B+60): `juno-dashboard serve` with its collector in the same process.

    home/etc/dashboard.yaml   the dashboard (juno_dcs.dashboard.config.DashboardConfig; docs/dashboard.md)

Wiring of the grid (`juno-dcs up`): `layout` names the files and ports, `render_configs` returns the config
files by path, `programs` the supervised programs, `check` the health check that `up` waits for and `status`
reports, `services` its URLs in `status --json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from juno_dcs.dashboard.config import DashboardConfig
from juno_dcs.grid import issuer, wms
from juno_dcs.grid.assets import chartjs
from juno_dcs.grid.health import Health
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.programs import Program, venv_bin
from juno_dcs.grid.render import digest
from juno_dcs.settings import GridSettings
from juno_dcs.topology.models import Topology

ACCOUNT = "root"  # reads every scope's rules and replicas


@dataclass(frozen=True)
class DashboardLayout:
    etc: Path
    config: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def layout(home: GridHome, state: GridState) -> DashboardLayout:
    return DashboardLayout(etc=home.etc, config=home.etc / "dashboard.yaml", port=state.ports.port("dashboard"))


def config_model(home: GridHome, state: GridState, settings: GridSettings) -> DashboardConfig:
    return DashboardConfig(
        database_url=wms.database_url(state), transfer_url=state.ports.url("fts", "https"),
        dispatcher_url=state.ports.url("dispatcher"),
        rucio_config=home.client_cfg(ACCOUNT), rucio_account=ACCOUNT,
        topology=settings.topology_file.resolve(), policies_dir=settings.placement_dir.resolve(),
        chartjs=chartjs(settings.node_modules),
        ingest_metrics_dir=home.run / "ingest",
        token=issuer.client_auth(issuer.layout(home, state), "dashboard"),
        transfer_audience=issuer.FTS_AUDIENCE, dispatcher_audience=issuer.WMS_AUDIENCE,
    )


def render_configs(where: DashboardLayout, home: GridHome, state: GridState, settings: GridSettings,
                   topo: Topology) -> dict[Path, str]:
    data = config_model(home, state, settings).model_dump(mode="json")
    text = ("# The dashboard. Written by `juno-dcs up`; edits are overwritten (docs/dashboard.md lists the keys).\n"
            + yaml.safe_dump(data, sort_keys=False))
    return {where.config: text}


def programs(where: DashboardLayout, home: GridHome, state: GridState, settings: GridSettings,
             files: Mapping[Path, str], rucio_env: Mapping[str, str]) -> list[Program]:
    """`files` is what render_configs returned (for the programs' config digests)."""
    env = {**rucio_env, "RUCIO_CONFIG": str(home.client_cfg(ACCOUNT)),
           "JUNO_DCS_CONFIG_DIGEST": digest(files.get(where.config, ""))}
    # the page's requests share db_connections; the collector holds one more
    connections = config_model(home, state, settings).db_connections + 1
    return [Program(name="dashboard", priority=700, environment=env, pg_connections=connections,
                    command=[venv_bin("juno-dashboard"), "serve", "--config", str(where.config),
                             "--port", str(where.port)])]


def services(where: DashboardLayout) -> dict[str, str]:
    """URLs for `juno-dcs status --json` under `services`."""
    return {"dashboard": where.url}


def check(where: DashboardLayout, timeout: float = 3.0) -> Health:
    """The dashboard answers its health endpoint, which says how its collector is doing."""
    try:
        with requests.get(f"{where.url}api/health", timeout=timeout) as reply:
            reply.raise_for_status()
            collector = str(reply.json().get("collector", "?"))
    except (requests.RequestException, ValueError) as exc:
        return Health(False, f"dashboard: no answer ({exc.__class__.__name__})")
    return Health(True, f"dashboard answers; collector: {collector}")
