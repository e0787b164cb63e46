"""The grid's dashboard (B+60): `juno-monitor serve` and its collector.

Wiring of the grid (`juno-dcs up`): `layout` names the files and ports, `render_configs` returns the config
files by path, `programs` the supervised programs, `check` the health check that `up` waits for and `status`
reports, `services` its URLs in `status --json`. OWNER: dashboard helper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from juno_dcs.grid.health import Health
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.programs import Program
from juno_dcs.settings import GridSettings
from juno_dcs.topology.models import Topology


@dataclass(frozen=True)
class MonitorLayout:
    etc: Path


def layout(home: GridHome, state: GridState) -> MonitorLayout:
    return MonitorLayout(etc=home.etc)


def render_configs(where: MonitorLayout, home: GridHome, state: GridState, settings: GridSettings,
                   topo: Topology) -> dict[Path, str]:
    return {}


def programs(where: MonitorLayout, home: GridHome, state: GridState, settings: GridSettings,
             files: Mapping[Path, str], rucio_env: Mapping[str, str]) -> list[Program]:
    """`files` is what render_configs returned (for the programs' config digests)."""
    return []


def services(where: MonitorLayout) -> dict[str, str]:
    """URLs for `juno-dcs status --json` under `services`."""
    return {}


def check(where: MonitorLayout) -> Health | None:
    """None while this part has no service to check."""
    return None
