"""The probes' configuration file (`etc/probes.yaml`, written by `juno-dcs up` from `ProbesConfig`): where the
services are, the monitoring database, and per probe its schedule and extra command-line arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from juno_dcs import errors
from juno_dcs.tokens.config import ClientAuth

PROBES = ("rucio", "tpc", "stuck-rules", "ingest-lag", "transfer-queues", "conditions", "dispatcher", "programs")


class ConfigError(errors.ConfigError, ValueError):  # ValueError: what juno_probes.cli catches
    """The configuration file is missing, not YAML, or not a valid ProbesConfig; the message says where."""


class ProbeSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Run this probe on the schedule.")
    interval_s: float = Field(default=60.0, gt=0, description="Seconds between two runs (one run per slot).")
    args: list[str] = Field(default_factory=list,
                            description="Extra arguments of `juno-probe NAME`, e.g. [--modes, pull].")


class ProbesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    monitor_dsn: str | None = Field(default=None, description="PostgreSQL DSN of the monitoring database "
                                                              "(schema probes); None: results are only printed.")
    rucio_config: Path | None = Field(default=None, description="Rucio client config (default $RUCIO_CONFIG).")
    fts_url: str | None = Field(default=None, description="The transfer service's REST API.")
    dispatcher_url: str | None = Field(default=None, description="The dispatcher (default $JUNO_WMS_URL).")
    token: ClientAuth | None = Field(default=None, description="The probes' client of the token issuer, for the "
                                     "transfer service and the dispatcher (docs/security.md).")
    ca_file: Path | None = Field(default=None, description="The CA of the grid's HTTPS services (the transfer "
                                 "service); default: the system's store.")
    fts_audience: str = Field(default="127.0.0.1", description="The transfer service's token audience.")
    dispatcher_audience: str = Field(default="juno-wms", description="The dispatcher's token audience.")
    conditions_url: str | None = Field(default=None, description="The conditions service.")
    squids: dict[str, str] = Field(default_factory=dict, description="Site -> Squid URL in front of it.")
    ingest_metrics_dir: Path | None = Field(default=None, description="The ingestor's metrics_dir.")
    supervisor_url_file: Path | None = Field(default=None, description="A file (mode 0600) holding the grid "
                                             "supervisor's XML-RPC URL with its credentials, for the `programs` "
                                             "probe; $JUNO_DCS_SUPERVISOR_URL wins.")
    orchestrated: bool = Field(default=False, description="The grid's programs run under an orchestrator (Docker "
                               "Swarm), not a supervisor: the `programs` probe checks the heartbeats only.")
    schedule: str = Field(default="default", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$",
                          description="Schedulers with the same schedule name share its slots: one run per slot.")
    tick_s: float = Field(default=5.0, gt=0, description="How often the scheduler looks for due probes.")
    retry_unknown_s: float = Field(default=60.0, gt=0, description="A probe that ended UNKNOWN runs again after "
                                                                   "at most this long.")
    probes: dict[str, ProbeSchedule] = Field(default_factory=dict, description="Probe name -> its schedule.")

    @field_validator("probes")
    @classmethod
    def _known(cls, value: dict[str, ProbeSchedule]) -> dict[str, ProbeSchedule]:
        if unknown := sorted(set(value) - set(PROBES)):
            raise ValueError(f"unknown probe {', '.join(unknown)} (known: {', '.join(PROBES)})")
        return value


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())


def parse(data: Any, where: str) -> ProbesConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return ProbesConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_problems(exc)}") from exc


def load(path: Path) -> ProbesConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the probes configuration: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse(data, str(path))


def dump(config: ProbesConfig, header: str = "") -> str:
    data = config.model_dump(mode="json")
    return (f"# {header}\n" if header else "") + yaml.safe_dump(data, sort_keys=False)
