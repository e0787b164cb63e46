"""The conditions service's configuration: a YAML file (it holds the reader's password: mode 0600) validated
into a frozen typed object, built once in main() and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from juno_dcs.conditions.errors import ConditionsInputError
from juno_dcs.yamlconfig import load_model


class ServiceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = Field(description="SQLAlchemy URL of the read-only account, mysql+pymysql://user:pw@host/db.")
    open_max_age: int = Field(
        default=30, ge=0, le=3600,
        description="Seconds an open tag's lookups may be served from a cache before revalidation: a change "
        "reaches the jobs within this time (Squid's copy plus the client's in-process copy share it).",
    )
    locked_max_age: int = Field(default=30 * 86400, ge=0, description="Max-age (s) of a locked tag's lookups.")
    payload_max_age: int = Field(default=365 * 86400, ge=0, description="Max-age (s) of payloads (immutable).")
    stale_if_error: int = Field(
        default=86400, ge=0, description="Seconds a cache may serve an expired answer while the service fails."
    )
    pool_size: int = Field(default=8, ge=1, description="Database connections per worker process.")
    db_timeout: float = Field(default=3.0, gt=0, description="Seconds to connect to the database before a 503.")


def load_config(path: Path) -> ServiceConfig:
    return load_model(path, ServiceConfig, "conditions service configuration", ConditionsInputError)
