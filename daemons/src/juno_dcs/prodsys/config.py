"""The production manager's configuration: one YAML file validated into a frozen typed object.

    database_url: postgresql://user@127.0.0.1:5432/db   # schema prodsys is created in it (idempotently)
    dispatcher_url: http://127.0.0.1:23050              # juno-wms serve
    rucio: {config: /home/etc/clients/production.cfg, account: production}
    policies_dir: /srv/juno/placement                   # default: the package's placement/
    topology: /srv/juno/topology.yaml                   # default: the package's topology.yaml
    sleep: 10                                           # seconds between the daemon's passes when idle
    events: {url: stomp://127.0.0.1:23002, username: events,      # Rucio's events (hermes) wake the daemon;
             password_file: /home/secrets/activemq-events}        # then a full pass every `reconcile` s
    reconcile: 60
    auth: {issuer: https://127.0.0.1:23033/, client_id: production, secret_file: /home/secrets/clients/production,
           ca_file: /home/pki/ca.pem}                  # the daemon's own token for the dispatcher

The file is `--config FILE`, else $JUNO_PROD_CONFIG.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from juno_dcs import packaged
from juno_dcs.errors import ConfigError
from juno_dcs.prodsys.events import EventsConfig
from juno_dcs.tokens.config import ClientAuth
from juno_dcs.yamlconfig import load_model

ENV_CONFIG = "JUNO_PROD_CONFIG"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RucioSettings(_Frozen):
    config: Path | None = Field(default=None, description="The Rucio client config (set as RUCIO_CONFIG); "
                                "None: Rucio's own lookup.")
    account: str = Field(default="production", description="The account that owns the productions' DIDs.")


class ProdConfig(_Frozen):
    database_url: str = Field(description="PostgreSQL; the schema prodsys holds the productions.")
    dispatcher_url: str = Field(description="The dispatcher's HTTP API (juno-wms serve).")
    rucio: RucioSettings = RucioSettings()
    policies_dir: Path = Field(default_factory=lambda: packaged.data_dir() / "placement",
                               description="raw/production/user.yaml (default: the package's).")
    topology: Path = Field(default_factory=lambda: packaged.data_dir() / "topology.yaml",
                           description="The grid's topology (default: the package's).")
    sleep: float = Field(default=10.0, gt=0, description="Seconds the daemon sleeps after a pass with no work "
                         "(without `events`).")
    events: EventsConfig | None = Field(default=None, description="Rucio's events on the broker hermes sends "
                                        "to: a RULE_OK of a step's dataset wakes the daemon at once.")
    reconcile: float = Field(default=60.0, gt=0, description="With `events`: seconds between full passes, which "
                             "find what a lost event or a broker that is down would have announced.")
    owner: str = Field(default="production", description="The dispatcher tasks' owner (a Rucio account).")
    dispatcher_timeout: float = Field(default=30.0, gt=0)
    auth: ClientAuth | None = Field(default=None, description="The daemon's (`juno-prod run`) client of the token "
                                    "issuer: its token for the dispatcher (the secret stays in its 0600 file). "
                                    "None: the daemon sends the token WLCG discovery finds, like the commands, "
                                    "which always send the user's.")
    dispatcher_audience: str = Field(default="juno-wms", description="The audience of the dispatcher's tokens.")


def load_config(path: Path | None) -> ProdConfig:
    """The configuration at `path`, else at $JUNO_PROD_CONFIG."""
    if path is None:
        env = os.environ.get(ENV_CONFIG)
        if not env:
            raise ConfigError(f"no configuration: give --config FILE or set {ENV_CONFIG}")
        path = Path(env)
    return load_model(path, ProdConfig, "production manager configuration", ConfigError)
