"""The pilot factory's configuration (`juno-pilot factory --config FILE`): YAML validated into a frozen object.

    dispatcher_url: http://127.0.0.1:23050      # the dispatcher (juno-wms serve)
    rucio_configs: /tmp/g/etc/clients           # <owner>.cfg per Rucio account, handed to every pilot
    work_root: /tmp/g/var/pilots                # pilots' work dirs, logs, the factory's locks and pilot records
    pilot_lifetime_s: 3600
    sleep_s: 10
    default_max_pilots: 2
    queues:
      IHEP: {max_pilots: 4}
      MSU: {enabled: false}
    conditions_urls:
      IHEP: [http://127.0.0.1:27041, http://127.0.0.1:27040]
    env: {X509_CERT_DIR: /work/main/var/pki/certificates}
    auth: {issuer: https://127.0.0.1:23033/, client_id: pilot, secret_file: /tmp/g/secrets/clients/pilot,
           ca_file: /tmp/g/pki/ca.pem}      # the pilots' token client (the factory's and every pilot's)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from juno_dcs.errors import ConfigError
from juno_dcs.tokens.config import ClientAuth
from juno_dcs.yamlconfig import load_model


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QueueConfig(_Frozen):
    enabled: bool = Field(default=True, description="False: the factory starts no pilots for this queue.")
    max_pilots: int | None = Field(default=None, ge=0,
                                   description="Pilots running at once for this queue (default default_max_pilots).")
    pilot_cores: int = Field(default=1, ge=1, description="Cores each pilot offers (a job's cores must fit).")


class FactoryConfig(_Frozen):
    dispatcher_url: str = Field(description="The dispatcher's base URL (juno-wms serve).")
    rucio_configs: Path = Field(description="Directory of Rucio client configurations, <account>.cfg; every pilot "
                                            "stages a job's data with its owner's file.")
    work_root: Path = Field(description="Where pilots work (<work_root>/<queue>/<pilot_id>/), log "
                                        "(<work_root>/logs/) and where the factory keeps its lock files and the "
                                        "records of running pilots (<work_root>/factory/).")
    pilot_lifetime_s: int = Field(default=3600, ge=60, description="Each pilot's --lifetime-s: it takes no job "
                                                                    "that would run past it.")
    sleep_s: float = Field(default=10.0, gt=0, description="Seconds between two cycles of the factory.")
    default_max_pilots: int = Field(default=2, ge=0, description="max_pilots of a queue that `queues` does not set.")
    queues: dict[str, QueueConfig] = Field(default_factory=dict, description="Per-queue settings by queue name; "
                                           "every queue the dispatcher lists is served unless it is disabled here.")
    only_listed_queues: bool = Field(default=False, description="True: serve only the queues named in `queues`.")
    conditions_urls: dict[str, list[str]] = Field(
        default_factory=dict, description="Per site: the conditions service URLs for JUNO_CONDITIONS_URLS, the "
                                          "site's Squid proxies first.")
    memory_scale: float = Field(default=1.0, gt=0, le=1, description="Extra factor on the memory a queue offers "
                                "(the dispatcher already applies the grid's memory_scale; 1.0 keeps its figure).")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment for every pilot (e.g. "
                                                                   "X509_CERT_DIR for the storage's CA).")
    pilot_command: list[str] = Field(default_factory=list, description="The pilot program and leading arguments; "
                                     "empty: juno-pilot next to the factory's Python.")
    stage_scheme: str | None = Field(default=None, description="The protocol every pilot stages data with "
                                     "(--stage-scheme), e.g. root; None: the RSEs' own order.")
    stop_grace_s: float = Field(default=60.0, gt=0, description="When a pilot is killed: seconds between SIGTERM "
                                "(it fails or finishes its job cleanly) and SIGKILL.")
    auth: ClientAuth | None = Field(default=None, description="The pilot client of the token issuer: the factory "
                                    "reads the queues with its token, and every pilot gets the same client (the "
                                    "path of its 0600 secret file, never the secret) to get and refresh its own. "
                                    "None: they send what WLCG token discovery finds in their environment.")
    dispatcher_audience: str = Field(default="juno-wms", description="The audience of the dispatcher's tokens.")

    def queue(self, name: str) -> QueueConfig:
        return self.queues.get(name, QueueConfig())

    def max_pilots(self, name: str) -> int:
        configured = self.queue(name).max_pilots
        return self.default_max_pilots if configured is None else configured

    def serves(self, name: str) -> bool:
        if self.only_listed_queues and name not in self.queues:
            return False
        return self.queue(name).enabled


def token_options(auth: ClientAuth | None, audience: str) -> list[str]:
    """`juno-pilot run`'s options naming its token client: the secret's file, never the secret."""
    if auth is None:
        return []
    return ["--token-issuer", auth.issuer, "--token-client-id", auth.client_id, "--token-secret-file",
            str(auth.secret_file), *(["--token-ca-file", str(auth.ca_file)] if auth.ca_file else []),
            "--token-audience", audience]


def load_config(path: Path) -> FactoryConfig:
    return load_model(path, FactoryConfig, "pilot factory configuration", ConfigError)
