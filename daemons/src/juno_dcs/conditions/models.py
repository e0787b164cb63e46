"""The typed boundary of condition data: names, run ranges, payload types, what the API answers and the
export file. Everything from outside (a CLI argument, an HTTP path, an import file) is validated here once.

Payloads are bytes, addressed by their sha256. A folder declares its payload type; the typed types are
JSON documents checked against a model when they are added and decoded into it by the client:

    pmt_gains        {"channel": [int], "gain": [float], "sigma": [float]}   (same lengths, unique channels)
    timing_offsets   {"channel": [int], "offset_ns": [float]}
    energy_scale     {"pe_per_mev": float, "nonlinearity": [float]}
    json             any JSON document
    bytes            anything (not decoded)
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from juno_dcs.conditions.errors import ConditionsInputError

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
HASH_PATTERN = r"^[0-9a-f]{64}$"
MAX_RUN = 2**31 - 1
MAX_PAYLOAD = 64 * 1024 * 1024  # bytes
EXPORT_FORMAT = "juno-conditions-tag/1"
_NAME = re.compile(NAME_PATTERN)
_HASH = re.compile(HASH_PATTERN)

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
Run = Annotated[int, Field(ge=0, le=MAX_RUN)]
TagState = Literal["open", "locked"]
PayloadType = Literal["pmt_gains", "timing_offsets", "energy_scale", "json", "bytes"]
PAYLOAD_TYPES: tuple[PayloadType, ...] = ("pmt_gains", "timing_offsets", "energy_scale", "json", "bytes")


def check_name(value: str, what: str) -> str:
    """A tag or folder name: a letter, then up to 63 letters, digits, '_', '.' or '-'."""
    if not _NAME.match(value):
        raise ConditionsInputError(f"{what} {value!r}: a name is a letter then up to 63 of [A-Za-z0-9_.-]")
    return value


def check_hash(value: str) -> str:
    if not _HASH.match(value):
        raise ConditionsInputError(f"payload hash {value!r}: expected 64 lower-case hex digits (sha256)")
    return value


def payload_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunRange(_Frozen):
    """Runs first..last, both included."""

    first: Run
    last: Run

    @model_validator(mode="after")
    def _ordered(self) -> RunRange:
        if self.last < self.first:
            raise ValueError(f"last run {self.last} is before first run {self.first}")
        return self

    @classmethod
    def parse(cls, text: str) -> RunRange:
        """'100-200', '100-' (to the largest run) or '100' (one run)."""
        first, sep, last = text.strip().partition("-")
        try:
            lo = int(first)
            hi = (int(last) if last else MAX_RUN) if sep else lo
            return cls(first=lo, last=hi)
        except (ValueError, ValidationError) as exc:
            raise ConditionsInputError(f"run range {text!r}: expected FIRST-LAST, FIRST- or RUN "
                                       f"with runs from 0 to {MAX_RUN} ({exc})") from exc


# --- typed payloads
class _Channels(_Frozen):
    channel: list[int]

    @field_validator("channel")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("channels are not unique")
        return value

    def _same_length(self, **columns: list[float]) -> None:
        for name, column in columns.items():
            if len(column) != len(self.channel):
                raise ValueError(f"{name} has {len(column)} values for {len(self.channel)} channels")


class PmtGains(_Channels):
    gain: list[float]
    sigma: list[float]

    @model_validator(mode="after")
    def _lengths(self) -> PmtGains:
        self._same_length(gain=self.gain, sigma=self.sigma)
        return self


class TimingOffsets(_Channels):
    offset_ns: list[float]

    @model_validator(mode="after")
    def _lengths(self) -> TimingOffsets:
        self._same_length(offset_ns=self.offset_ns)
        return self


class EnergyScale(_Frozen):
    pe_per_mev: float = Field(gt=0)
    nonlinearity: list[float] = Field(default_factory=list)


TYPED_MODELS: dict[str, type[BaseModel]] = {
    "pmt_gains": PmtGains, "timing_offsets": TimingOffsets, "energy_scale": EnergyScale,
}
Payload = PmtGains | TimingOffsets | EnergyScale | dict[str, Any] | list[Any] | bytes


def decode_payload(payload_type: str, data: bytes, where: str = "payload") -> Payload:
    """The payload's bytes as its folder's type; ConditionsInputError names `where` and the problem."""
    if payload_type == "bytes":
        return data
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConditionsInputError(f"{where}: a {payload_type} payload must be JSON: {exc}") from exc
    model = TYPED_MODELS.get(payload_type)
    if model is None:
        if payload_type != "json":
            raise ConditionsInputError(f"{where}: unknown payload type {payload_type!r}")
        return document  # type: ignore[no-any-return]
    try:
        return model.model_validate(document)  # type: ignore[return-value]
    except ValidationError as exc:
        raise ConditionsInputError(f"{where}: not a valid {payload_type} payload: {_problems(exc)}") from exc


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()[:5])


# --- what the database and the API hold
class FolderInfo(_Frozen):
    name: Name
    payload_type: PayloadType
    description: str = ""


class TagInfo(_Frozen):
    name: Name
    state: TagState
    description: str = ""
    created: dt.datetime
    modified: dt.datetime = Field(description="Last change of the tag's content (UTC).")
    locked: dt.datetime | None = None


class IovInfo(_Frozen):
    folder: Name
    payload_type: PayloadType
    first_run: Run
    last_run: Run
    payload_hash: str
    payload_size: int


# --- the export file
class ExportedIov(_Frozen):
    folder: Name
    first_run: Run
    last_run: Run
    payload: str = Field(pattern=HASH_PATTERN)


class TagExport(_Frozen):
    """A global tag with everything it needs, in the order its intervals were added (newest last wins)."""

    format: Literal["juno-conditions-tag/1"] = "juno-conditions-tag/1"
    name: Name
    state: TagState
    description: str = Field(default="", max_length=1000)
    folders: list[FolderInfo]
    iovs: list[ExportedIov]
    payloads: dict[str, str] = Field(description="sha256 -> base64 of the payload's bytes")

    @model_validator(mode="after")
    def _consistent(self) -> TagExport:
        folders = {f.name: f for f in self.folders}
        if len(folders) != len(self.folders):
            raise ValueError("a folder is listed twice")
        for digest, encoded in self.payloads.items():
            try:
                data = base64.b64decode(encoded, validate=True)
            except ValueError as exc:
                raise ValueError(f"payloads.{digest}: not base64 ({exc})") from exc
            if payload_hash(data) != digest:
                raise ValueError(f"payloads.{digest}: the bytes' sha256 is {payload_hash(data)}")
        for i, iov in enumerate(self.iovs):
            if iov.folder not in folders:
                raise ValueError(f"iovs.{i}: folder {iov.folder!r} is not in folders")
            if iov.payload not in self.payloads:
                raise ValueError(f"iovs.{i}: payload {iov.payload} is not in payloads")
            if iov.last_run < iov.first_run:
                raise ValueError(f"iovs.{i}: last run {iov.last_run} is before first run {iov.first_run}")
        for i, iov in enumerate(self.iovs):
            data = base64.b64decode(self.payloads[iov.payload])
            try:
                decode_payload(folders[iov.folder].payload_type, data)
            except ConditionsInputError as exc:
                raise ValueError(f"iovs.{i} ({iov.folder}): {exc}") from exc
        return self

    def payload_bytes(self, digest: str) -> bytes:
        return base64.b64decode(self.payloads[digest])


def parse_export(text: str, where: str) -> TagExport:
    """An export file's text as a TagExport; every problem names the file and the field."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConditionsInputError(f"{where}: not JSON: {exc}") from exc
    try:
        return TagExport.model_validate(document)
    except ValidationError as exc:
        raise ConditionsInputError(f"{where}: {_problems(exc)}") from exc
