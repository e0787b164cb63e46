"""The dispatcher's configuration (`juno-wms serve|agent --config FILE`): YAML into a frozen typed object.

Each key is described in docs/wms.md, section "Dispatcher"."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from juno_dcs.errors import ConfigError
from juno_dcs.tokens.config import ServiceAuth
from juno_dcs.yamlconfig import load_model


class WmsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = Field(description="PostgreSQL conninfo/URL; the dispatcher's tables are in schema `wms`.")
    topology: Path = Field(description="etc/topology.yaml: the sites (queues), their RSEs and distances.")
    retry_rules: Path = Field(description="etc/wms-retry.yaml: what a failed attempt leads to.")
    error_rules: Path | None = Field(default=None, description="etc/wms-errors.yaml: the failure classes and "
                                     "their natures (None: the package's).")
    lease_s: int = Field(default=120, ge=1, description="A leased job without heartbeat this long is lost.")
    memory_scale: float = Field(default=0.1, gt=0, le=1, description="Queue memory on this machine: "
                                "memory_per_core_gb * 1000 * memory_scale MB per core.")
    rucio: bool = Field(default=False, description="Weight brokerage by input replicas from Rucio "
                        "(rucio.client.Client, configured by RUCIO_CONFIG or `rucio_config`).")
    rucio_config: Path | None = Field(default=None, description="rucio.cfg for the agent's Rucio client.")
    agent_sleep_s: float = Field(default=5.0, gt=0, description="Agent: seconds between cycles with little work.")
    agent_bulk: int = Field(default=1000, ge=1, description="Agent: jobs brokered or expired per transaction.")
    pool_size: int = Field(default=8, ge=1, description="Database connections per server process.")
    auth: ServiceAuth | None = Field(description="Token checks (required key): the issuer, the audience "
                                     "(`juno-wms`), the CA, the admin and reader groups. `null` turns them off: "
                                     "every caller may do everything and a task's owner comes from the body "
                                     "(tests and benchmarks only; a grid always sets it).")
    pilot_group: str = Field(default="/juno/pilots", description="`wlcg.groups` entry of pilot tokens: only they "
                             "take jobs and report on them, and they do nothing else.")
    production_group: str = Field(default="/juno/production", description="`wlcg.groups` entry needed to "
                                  "submit a task of kind `production`.")


def load_config(path: Path) -> WmsConfig:
    config = load_model(path, WmsConfig, "dispatcher configuration", ConfigError)
    base = path.resolve().parent  # relative file names are relative to the configuration file
    files = ("topology", "retry_rules", "error_rules", "rucio_config")
    updates: dict[str, object] = {k: base / v for k in files
               if (v := getattr(config, k)) is not None and not v.is_absolute()}
    auth = config.auth
    if auth is not None and auth.ca_file is not None and not auth.ca_file.is_absolute():
        updates["auth"] = auth.model_copy(update={"ca_file": base / auth.ca_file})
    return config.model_copy(update=updates) if updates else config
