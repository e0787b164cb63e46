"""The transfer service's configuration: a YAML file validated into a frozen typed object."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from juno_dcs.errors import ConfigError
from juno_dcs.tokens.config import ClientAuth, ServiceAuth
from juno_dcs.yamlconfig import load_model

CopyMode = Literal["pull", "push", "streamed"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TapeEndpoint(_Frozen):
    staging_delay: float = Field(default=2.0, ge=0, description="Seconds a file takes to come online.")
    archive_delay: float = Field(default=2.0, ge=0, description="Seconds between copy and tape migration.")


class OptimizerConfig(_Frozen):
    start: int = Field(default=2, ge=1, description="Concurrent transfers per link at first.")
    step: int = Field(default=2, ge=1, description="Largest growth per decision (when the queue is long).")
    min: int = Field(default=1, ge=1)
    max: int = Field(default=16, ge=1)
    interval: float = Field(default=5.0, gt=0, description="Seconds between decisions on one link.")
    target_success: float = Field(default=0.97, gt=0, le=1)


class WorkerConfig(_Frozen):
    threads: int = Field(default=16, ge=1, description="Copies running at once in one worker process.")
    db_connections: int = Field(default=8, ge=1, description="Database connections the copy threads share (a copy "
                                "holds none while it runs); one more listens for new work.")
    poll_interval: float = Field(default=0.5, gt=0)
    heartbeat_interval: float = Field(default=5.0, gt=0)
    lease: float = Field(default=30.0, gt=0, description="An ACTIVE file without heartbeat this long was lost.")
    default_timeout: int = Field(default=600, gt=0, description="Copy timeout (s) when the job gives none.")
    gfal2_log: Literal["warning", "normal", "verbose", "debug"] = Field(
        default="warning",
        description="gfal2's own log level. Above warning it logs every HTTP header of every copy (~110 lines "
        "per file): 22 s of the worker's CPU per 1,000 copies against 14 s at warning.",
    )


class LinkConfig(_Frozen):
    default_mode: CopyMode = "pull"
    modes: dict[str, CopyMode] = Field(default_factory=dict, description='"SOURCE_SE DEST_SE": mode')

    def mode(self, source_se: str, dest_se: str) -> CopyMode:
        return self.modes.get(f"{source_se} {dest_se}", self.default_mode)


class MessagingConfig(_Frozen):
    """Where completion messages go (a STOMP broker), for Rucio's conveyor-receiver."""

    host: str = "127.0.0.1"
    port: int = Field(gt=0, lt=65536)
    username: str
    password: str
    destination: str = "/topic/transfer.fts_monitoring_complete"
    endpoint: str = Field(description="This service's URL, as the messages name it (endpnt).")


class TransferConfig(_Frozen):
    database_url: str
    vo: str = "juno"
    ca_dir: Path | None = Field(default=None, description="Trusted CAs (X509_CERT_DIR) for the copies' TLS.")
    ca_bundle: Path | None = Field(
        default=None,
        description="A PEM file of exactly the CAs the storage elements use. OpenSSL's default, the whole system "
        "bundle, is parsed again for every HTTPS session gfal2 opens (~20 ms of CPU each, several per copy).",
    )
    tape: dict[str, TapeEndpoint] = Field(default_factory=dict, description="Tape storage elements by SE name.")
    links: LinkConfig = LinkConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    worker: WorkerConfig = WorkerConfig()
    messaging: MessagingConfig | None = None
    api_db_connections: int = Field(default=4, ge=1, description="Database connections per REST worker process.")
    server_cert: Path | None = Field(default=None, description="The REST API's TLS certificate (PEM); with "
                                     "`server_key`, it serves HTTPS (Rucio sends its token only over HTTPS).")
    server_key: Path | None = None
    auth: ServiceAuth | None = Field(description="Whose tokens the REST API accepts (docs/security.md): every call "
                                     "but `GET /` needs one. A required key: `null` turns the checks off (every "
                                     "caller may do everything; for the token benchmarks only, warned at start).")
    exchange: ClientAuth | None = Field(
        default=None,
        description="The service's own client at the issuer, registered for token exchange: a job's tokens are "
        "exchanged for refresh tokens at submission and refreshed when they would run out before a copy is done "
        "(juno_dcs.transfer.keeper). None: a job's copies work while the tokens it came with last.")
    token_key_file: Path = Field(description="The key (mode 0600) that seals the tokens a job carries while it "
                                 "waits for its copies (juno_dcs.tokens.sealed).")


def load_config(path: Path) -> TransferConfig:
    return load_model(path, TransferConfig, "transfer configuration", ConfigError)
