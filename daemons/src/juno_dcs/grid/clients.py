"""What a command needs to talk to a running grid, without the launcher's weight: the Rucio client of an account
and the topology, checked. (`juno-dcs raw status`, `placement apply` and the like import this, not grid.launcher,
whose imports cost them half a second at every start.)"""

from __future__ import annotations

from typing import Any

from juno_dcs.clikit import use_rucio_config
from juno_dcs.errors import ConfigError
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.settings import GridSettings
from juno_dcs.topology import Topology, TopologyError, load_topology


def load_valid_topology(settings: GridSettings) -> Topology:
    try:
        return load_topology(settings.topology_file)
    except TopologyError as exc:
        raise ConfigError(f"the topology is not valid; nothing was applied:\n{exc}") from exc


def root_client(home: GridHome, state: GridState, account: str = "root") -> Any:
    """A Rucio client for `account` of this grid. Rucio reads its configuration once per process,
    so one process talks to one grid."""
    use_rucio_config(home.client_cfg(account))
    from rucio.client import Client

    url = state.ports.url("rucio")
    return Client(
        rucio_host=url, auth_host=url, account=account, auth_type="userpass",
        creds={"username": account, "password": state.password(account)},
    )
