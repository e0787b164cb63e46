"""The ingestor's configuration: one YAML file (the grid renders home/etc/ingest.yaml), validated into a frozen
typed object; every problem is reported with file, line and field, like the topology and the policy files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from juno_dcs.errors import ConfigError
from juno_dcs.ingest.kafka_config import KafkaSettings
from juno_dcs.placement.durations import DurationError, parse_duration
from juno_dcs.tokens.config import ClientAuth
from juno_dcs.topology.loader import validate_located
from juno_dcs.topology.yamlsrc import Problem, load_located, read_text


class IngestConfigError(ConfigError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("the ingestor's configuration is not valid:\n" + "\n".join(str(p) for p in problems))


class _NoCrossReference(ValueError):
    pass


def _seconds(value: Any) -> int:
    if value == 0 and not isinstance(value, bool):
        return 0
    try:
        seconds = parse_duration(value)
    except DurationError as exc:
        raise ValueError(exc.reason) from None
    if seconds is None:
        raise ValueError("a duration is needed, e.g. '6 hours'")
    return seconds


class RucioTarget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    account: str = Field(default="rawdata", description="The raw-data service account that registers the files.")
    rse: str = Field(default="IHEP_DISK", description="Where SPADE writes: the replicas are registered there.")
    scope: str = Field(default="raw")
    config: Path | None = Field(default=None, description="The rucio.cfg of the account (default: $RUCIO_CONFIG).")


class Retry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    initial: float = Field(default=0.5, gt=0, description="First wait (s) after a failure of Rucio or Kafka.")
    maximum: float = Field(default=10.0, gt=0, description="Longest wait (s) between attempts; attempts never end.")


class IngestConfig(BaseModel):
    """Everything one ingestor instance needs; two instances with the same group split the partitions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(default=1, ge=1, le=1)
    kafka: KafkaSettings
    topic: str = Field(default="spade.files", pattern=r"^[A-Za-z0-9._-]{1,200}$")
    dead_letter_topic: str = Field(default="spade.files.dead", pattern=r"^[A-Za-z0-9._-]{1,200}$")
    group_id: str = Field(default="juno-ingest", pattern=r"^[A-Za-z0-9._-]{1,200}$")
    rucio: RucioTarget = Field(default_factory=RucioTarget)
    batch_size: int = Field(default=1000, ge=1, le=10000, description="Messages handled per Rucio call at most.")
    register_threads: int = Field(default=2, ge=1, le=16, description="Rucio calls in flight at once; a batch is "
                                  "split among them (the Rucio server's workers work in parallel).")
    file_metadata: bool = Field(default=False, description="Also set run_number and stream_name on each file DID. "
                                "Off by default: both are in the file's name (the policy's naming) and Rucio sets "
                                "them one file at a time, which halves the registration rate.")
    poll_ms: int = Field(default=200, ge=1, description="Longest wait for new messages before handling a batch.")
    max_message_bytes: int = Field(default=16384, ge=512)
    verify_at_se: bool = Field(default=False, description="Stat each file at the SE (size, adler32) before "
                               "registering it; a mismatch is quarantined in the dead-letter topic.")
    verify_threads: int = Field(default=4, ge=1, le=64)
    storage_token: ClientAuth | None = Field(default=None, description="The issuer's client whose token "
                                             "(storage.read:/raw) the check at the SE carries; none: no token.")
    apply_rules: bool = Field(default=True, description="Put the policy's rules on each block when it opens.")
    policy_dir: Path | None = Field(default=None, description="etc/placement (needed when apply_rules).")
    topology: Path | None = Field(default=None, description="etc/topology.yaml (needed when apply_rules).")
    close_grace: int = Field(default=6 * 3600, description="A block closes this long after its day ends (UTC).")
    close_quiet: int = Field(default=600, description="... and once nothing was attached to it for this long.")
    lookback_days: int = Field(default=7, ge=0, description="At start, open blocks of this many past days are "
                               "taken over (closed when due, rules completed).")
    housekeeping_interval: float = Field(default=5.0, gt=0, description="Seconds between block closing rounds.")
    retry: Retry = Field(default_factory=Retry)
    metrics_dir: Path | None = Field(default=None, description="Where each instance writes its metrics "
                                     "(<host>-<pid>.json).")
    journal: Path | None = Field(default=None, description="Optional JSON-lines record of every registered file.")
    heartbeat_db: str | None = Field(default=None, description="PostgreSQL URL where each instance beats "
                                     "(juno_dcs.heartbeat; one short connection per pass); none: no heartbeats.")

    _durations = field_validator("close_grace", "close_quiet", mode="before")(_seconds)


def parse_config(text: str, source: str) -> IngestConfig:
    located, problems = load_located(text, source, expected="a mapping (kafka, topic, rucio, ...)")
    if located is None:
        raise IngestConfigError(problems)
    if not isinstance(located.data, dict):
        raise IngestConfigError([Problem(source, 1, "", "the top level must be a mapping (kafka, topic, ...)")])
    config, problems = validate_located(IngestConfig, located, source, problems, lambda _data: [],
                                        _NoCrossReference)
    if problems or config is None:
        raise IngestConfigError(problems)
    if config.apply_rules and (config.policy_dir is None or config.topology is None):
        raise IngestConfigError([Problem(source, 0, "apply_rules", "needs policy_dir and topology")])
    return config


def load_config(path: Path) -> IngestConfig:
    text, reason = read_text(path)
    if text is None:
        raise IngestConfigError([Problem(str(path), 0, "", f"cannot read the configuration: {reason}")])
    return parse_config(text, str(path))
