"""The grid's probes: `juno-probe schedule` (supervised program `probes`) runs every probe on its interval and
keeps the history in the schema `probes` of the grid's database (docs/probes.md; `up` makes and upgrades it).

    home/etc/probes.yaml   the probes (juno_probes.config.ProbesConfig; DSN inside: mode 0600)

Wiring of the grid (`juno-dcs up`): `layout` names the files, `render_configs` returns the config file,
`programs` the scheduler, `check` that the probes' schema is there and how many probes stored a run, `services` nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from juno_dcs.grid import conditions, issuer, wms
from juno_dcs.grid.health import Health
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.programs import Program, supervisor_url, venv_bin
from juno_dcs.grid.render import digest
from juno_dcs.settings import GridSettings
from juno_dcs.topology.models import Topology
from juno_probes.config import ProbeSchedule, ProbesConfig, dump

ACCOUNT = "root"  # reads every account's rules, limits and usage

# Short enough that a fresh grid has results within a minute or two. The full TPC matrix (5 DISK RSEs x 4 x 3
# modes = 60 copies of 1 MB) took 12 s on the dev grid, so it runs whole, every 10 minutes.
SCHEDULE: dict[str, ProbeSchedule] = {
    "rucio": ProbeSchedule(interval_s=60),
    "conditions": ProbeSchedule(interval_s=60),
    "dispatcher": ProbeSchedule(interval_s=30),
    "ingest-lag": ProbeSchedule(interval_s=30),
    "transfer-queues": ProbeSchedule(interval_s=60),
    "stuck-rules": ProbeSchedule(interval_s=60, args=["--older-than", "1800"]),
    "tpc": ProbeSchedule(interval_s=600, args=["--timeout", "60", "--parallel", "4"]),
    "programs": ProbeSchedule(interval_s=30),
}


@dataclass(frozen=True)
class ProbesLayout:
    etc: Path
    config: Path
    dsn: str
    supervisor_url_file: Path


def layout(home: GridHome, state: GridState) -> ProbesLayout:
    return ProbesLayout(etc=home.etc, config=home.etc / "probes.yaml", dsn=wms.database_url(state),
                        supervisor_url_file=home.etc / "supervisor.url")


def config_model(where: ProbesLayout, home: GridHome, state: GridState, topo: Topology) -> ProbesConfig:
    cond = conditions.layout(home, state, topo)
    return ProbesConfig(
        monitor_dsn=where.dsn, rucio_config=home.client_cfg(ACCOUNT), fts_url=state.ports.url("fts", "https"),
        dispatcher_url=state.ports.url("dispatcher"), conditions_url=cond.service_url,
        squids={site: cond.squid_url(site) for site in sorted(cond.squids)}, ingest_metrics_dir=home.run / "ingest",
        tick_s=2.0, probes=SCHEDULE,
        supervisor_url_file=None if state.engine == "swarm" else where.supervisor_url_file,
        orchestrated=state.engine == "swarm",
        token=issuer.client_auth(issuer.layout(home, state), "probes"), fts_audience=issuer.FTS_AUDIENCE,
        ca_file=issuer.layout(home, state).ca_file,
        dispatcher_audience=issuer.WMS_AUDIENCE,
    )


def render_configs(where: ProbesLayout, home: GridHome, state: GridState, settings: GridSettings,
                   topo: Topology) -> dict[Path, str]:
    text = dump(config_model(where, home, state, topo),
                "The probes. Written by `juno-dcs up`; edits are overwritten (docs/probes.md lists the keys).")
    # the `programs` probe asks the supervisor: its URL with the password, in a file of mode 0600 (a grid on Docker
    # Swarm has no supervisor)
    if state.engine == "swarm":
        return {where.config: text}
    return {where.config: text, where.supervisor_url_file: supervisor_url(state) + "\n"}


def programs(where: ProbesLayout, home: GridHome, state: GridState, settings: GridSettings,
             files: Mapping[Path, str], rucio_env: Mapping[str, str]) -> list[Program]:
    """`files` is what render_configs returned (for the programs' config digests)."""
    env = {**rucio_env, "RUCIO_CONFIG": str(home.client_cfg(ACCOUNT)),
           "JUNO_DCS_CONFIG_DIGEST": digest(files.get(where.config, ""))}
    # the scheduler's connection, and one of the probe it runs while that probe stores its result
    return [Program(name="probes", priority=650, environment=env, stopwaitsecs=90, pg_connections=2,
                    command=[venv_bin("juno-probe"), "schedule", "--config", str(where.config)])]


def services(where: ProbesLayout) -> dict[str, str]:
    """URLs for `juno-dcs status --json` under `services`: none, the probes serve nothing."""
    return {}


def check(where: ProbesLayout, timeout: float = 3.0) -> Health:
    """The probes' schema is there (made by `up`); how many probes have stored a run."""
    try:
        with psycopg.connect(where.dsn, connect_timeout=int(timeout), autocommit=True) as conn:
            row = conn.execute("SELECT to_regclass('probes.probe_run') IS NOT NULL").fetchone()
            if not row or not row[0]:
                return Health(False, "the probes schema is not there (run `juno-dcs up`)")
            count = conn.execute("SELECT count(DISTINCT probe) FROM probes.probe_run").fetchone()
    except psycopg.Error as exc:
        return Health(False, f"monitoring database: {exc.__class__.__name__}")
    return Health(True, f"probes schema ready, {count[0] if count else 0} probes with results")
