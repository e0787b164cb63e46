"""SPADE's "file arrived at IHEP" message, version 1: the JSON that the detector's transfer system publishes on
Kafka for every raw file it has written to IHEP_DISK, validated into a typed object at the edge.

docs/schemas/spade-file-arrived-v1.json is this model's JSON Schema (a unit test keeps them equal);
docs/ingest.md explains each field. Anything that does not validate becomes a Rejection with the reason and the
field at fault; the ingestor dead-letters it and goes on.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from juno_rucio_policy import naming
from juno_rucio_policy.paths import path_for

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAX_MESSAGE_BYTES = 16 * 1024  # a file-arrived message is ~400 bytes; anything far larger is not one
RAW_SCOPE = "raw"


class FileArrived(BaseModel):
    """One raw file, written by SPADE to IHEP_DISK with its size and adler32 checked there."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="SPADE file-arrived message, version 1")

    version: Literal[1] = Field(description="Schema version of this message.")
    spade_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
                          description="SPADE's own identifier of this delivery (unique per file and attempt).")
    name: str = Field(max_length=250, description="The raw file's name: RUN.<run:6>.<stream>.<seq:5>.<YYYYMMDD>.rtraw")
    size: int = Field(ge=0, le=2**50, description="Bytes.")
    adler32: str = Field(pattern=r"^[0-9a-f]{8}$", description="adler32 of the content: 8 lowercase hex digits.")
    rse: Literal["IHEP_DISK"] = Field(default="IHEP_DISK", description="The storage element SPADE wrote to.")
    location: str = Field(max_length=1024,
                          description="The file's URL at IHEP_DISK (davs:// or root://); its path must end with "
                          "the deterministic JUNO path of the name (raw/<YYYY>/<MMDD>/<run>/<name>).")
    run: int = Field(ge=0, le=999999, description="Run number (as in the name).")
    stream: str = Field(pattern=rf"^{naming.STREAM_PATTERN}$", description="Data stream (as in the name).")
    received_at: dt.datetime = Field(description="When IHEP received the file, ISO 8601 with a UTC offset; its UTC "
                                     "date is the file's daily block.")

    @field_validator("name")
    @classmethod
    def _raw_name(cls, name: str) -> str:
        problem = naming.problem(RAW_SCOPE, name, collection=False)
        if problem:
            raise ValueError(problem)
        return name

    @field_validator("received_at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-11-25T08:00:00Z")
        return value.astimezone(dt.UTC)

    @field_validator("location")
    @classmethod
    def _url(cls, location: str) -> str:
        parts = urlsplit(location)
        if parts.scheme not in ("davs", "https", "root"):
            raise ValueError(f"scheme {parts.scheme or '(none)'!r} is not davs, https or root")
        if not parts.hostname or ".." in parts.path.split("/") or "\\" in location:
            raise ValueError("not a clean URL with a host and a path")
        return location

    @model_validator(mode="after")
    def _consistent(self) -> FileArrived:
        fields = naming.parse(RAW_SCOPE, self.name, collection=False).fields
        if int(fields["run"]) != self.run:
            raise ValueError(f"run: {self.run} differs from the name's run {int(fields['run'])}")
        if fields["stream"] != self.stream:
            raise ValueError(f"stream: {self.stream!r} differs from the name's stream {fields['stream']!r}")
        expected = path_for(RAW_SCOPE, self.name)
        if not urlsplit(self.location).path.endswith("/" + expected):
            raise ValueError(f"location: {self.location} is not IHEP_DISK's path for this name (…/{expected})")
        return self

    @property
    def day(self) -> dt.date:
        """The receiving day (UTC): the daily block this file belongs to."""
        return self.received_at.date()

    @property
    def block(self) -> str:
        return naming.block_name(self.day, self.stream)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


@dataclass(frozen=True)
class Rejection:
    """Why a message is not a valid FileArrived: the reason in words and, where known, the field."""

    reason: str
    field: str | None = None

    def text(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


def parse(raw: bytes | None, max_bytes: int = MAX_MESSAGE_BYTES) -> FileArrived | Rejection:
    """Validate one Kafka message value."""
    if raw is None:
        return Rejection("empty message (no value)")
    if len(raw) > max_bytes:
        return Rejection(f"message of {len(raw)} bytes is over the limit of {max_bytes}")
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Rejection(f"not JSON: {exc}")
    if not isinstance(data, dict):
        return Rejection(f"not a JSON object but {type(data).__name__}")
    version = data.get("version")
    if version not in SUPPORTED_VERSIONS:
        return Rejection(f"unknown schema version {version!r}; this ingestor reads {list(SUPPORTED_VERSIONS)}",
                         "version")
    try:
        return FileArrived.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        text = first["msg"].removeprefix("Value error, ")
        more = f"; {exc.error_count() - 1} more problem(s)" if exc.error_count() > 1 else ""
        if where is None:  # a check across fields names its field first: "run: ..."
            where, _, text = text.partition(": ")
            return Rejection(f"{text}{more}", where)
        got = "" if first["type"] == "missing" else f" (got {_short(first.get('input'))})"
        return Rejection(f"{text}{got}{more}", where)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_schema() -> dict[str, Any]:
    """The JSON Schema of version 1, as published in docs/schemas/."""
    schema = FileArrived.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://juno.example.org/schemas/spade-file-arrived-v1.json"
    return schema
