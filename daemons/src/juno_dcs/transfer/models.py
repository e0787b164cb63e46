"""The transfer service's typed boundary: an FTS3 bulk submission validated into a JobSpec.

FTS3 clients send `{"files": [...], "params": {...}}`. Every field FTS3 documents for them is accepted
(most only recorded); an unknown field, a bad value, an unsupported scheme or a missing destination is a
`SubmitError` that the routes answer with 400 and the reason.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from juno_dcs.errors import ConfigError

SUPPORTED_SCHEMES = ("davs", "https", "http", "root")
CopyMode = Literal["pull", "push", "streamed"]
ChecksumMode = Literal["both", "source", "target", "none"]
_CHECKSUM = re.compile(r"^(?P<alg>[A-Za-z0-9]+)(?::(?P<value>[0-9A-Fa-f]+))?$")
_CHECKSUM_WORDS: dict[str, ChecksumMode] = {
    "b": "both", "both": "both", "s": "source", "source": "source", "t": "target", "target": "target",
    "n": "none", "none": "none",
}


class SubmitError(ConfigError):
    """A submission FTS3 would refuse; the message says what and where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in SUPPORTED_SCHEMES:
        raise ValueError(f"{where}: unsupported scheme {parts.scheme or '(none)'!r} in {url!r} "
                         f"(supported: {', '.join(SUPPORTED_SCHEMES)})")
    if not parts.hostname or not parts.path:
        raise ValueError(f"{where}: {url!r} needs a host and a path")
    return url


class FileRequest(_Strict):
    sources: list[str] = Field(min_length=1)
    destinations: list[str] = Field(min_length=1, max_length=1)
    metadata: dict[str, Any] | str | None = None
    filesize: int | None = Field(default=None, ge=0)
    checksum: str | None = None
    selection_strategy: str | None = None
    activity: str | None = None
    source_tokens: list[str] | None = None
    destination_tokens: list[str] | None = None
    staging_metadata: dict[str, Any] | None = None
    archive_metadata: dict[str, Any] | None = None
    scitag: int | None = None

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        return [_check_url(u, "sources") for u in value]

    @field_validator("destinations")
    @classmethod
    def _destinations(cls, value: list[str]) -> list[str]:
        return [_check_url(u, "destinations") for u in value]

    @field_validator("checksum")
    @classmethod
    def _checksum(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        match = _CHECKSUM.match(value)
        if match is None:
            raise ValueError(f"checksum {value!r} must be ALGORITHM[:HEX], e.g. ADLER32:0a1b2c3d")
        if match["alg"].lower() != "adler32":
            raise ValueError(f"checksum algorithm {match['alg']!r} is not supported (use ADLER32)")
        if match["value"] is None:  # the algorithm only: compare source and destination
            return "ADLER32"
        return f"ADLER32:{match['value'].lower().zfill(8)}"


class JobParams(_Strict):
    verify_checksum: bool | str | None = None
    overwrite: bool = False
    overwrite_on_retry: bool = False
    overwrite_when_only_on_disk: bool = False
    overwrite_hop: bool = False
    copy_pin_lifetime: int | None = None
    bring_online: int | None = None
    archive_timeout: int | None = None
    dst_file_report: bool = False
    fail_nearline: bool = False
    disable_cleanup: bool = False
    gridftp: str | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    job_metadata: dict[str, Any] | str | None = None
    max_time_in_queue: int | str | None = None
    multihop: bool = False
    retry: int = Field(default=0, ge=0, le=100)
    retry_delay: int = Field(default=0, ge=0)
    timeout: int | None = Field(default=None, gt=0)
    reuse: bool | None = None
    spacetoken: str | None = None
    source_spacetoken: str | None = None
    id_generator: Literal["standard", "deterministic"] = "standard"
    sid: str | None = None
    s3alternate: bool | None = None
    ipv4: bool | None = None
    ipv6: bool | None = None
    strict_copy: bool = False
    account: str | None = None
    nostreams: int | None = None
    buffer_size: int | None = None
    credential: str | None = None
    unmanaged_tokens: bool | None = None
    copy_mode: CopyMode | None = None  # this service's extension: pull, push or streamed for this job

    @field_validator("verify_checksum")
    @classmethod
    def _verify(cls, value: bool | str | None) -> bool | str | None:
        if isinstance(value, str) and value.lower() not in _CHECKSUM_WORDS:
            raise ValueError(f"{value!r} is not a checksum mode (both, source, target, none or b, s, t, n)")
        return value

    @field_validator("copy_pin_lifetime", "bring_online", "archive_timeout")
    @classmethod
    def _unset(cls, value: int | None) -> int | None:
        return None if value is not None and value < 0 else value  # FTS clients send -1 for "not set"

    def checksum_mode(self) -> ChecksumMode:
        if self.verify_checksum is None or self.verify_checksum is False:
            return "none"
        if self.verify_checksum is True:
            return "both"
        return _CHECKSUM_WORDS[self.verify_checksum.lower()]

    @property
    def job_priority(self) -> int:
        return self.priority if self.priority is not None else 3


class SubmitRequest(_Strict):
    files: list[FileRequest] = Field(min_length=1)
    params: JobParams = JobParams()


def parse_submission(body: Any) -> SubmitRequest:
    """Validate a decoded JSON body; raise SubmitError naming the field and the reason."""
    if not isinstance(body, dict):
        raise SubmitError("the body must be a JSON object with 'files' and 'params'")
    try:
        request = SubmitRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        kind = first["type"]
        if kind == "extra_forbidden":
            raise SubmitError(f"{where}: unknown field") from None
        if kind == "missing":
            raise SubmitError(f"{where}: missing") from None
        raise SubmitError(f"{where}: {str(first['msg']).removeprefix('Value error, ')}") from None
    if request.params.multihop:
        raise SubmitError("params.multihop: multi-hop jobs are not supported by this service")
    for i, f in enumerate(request.files):
        for name, tokens, urls in (("source_tokens", f.source_tokens, f.sources),
                                   ("destination_tokens", f.destination_tokens, f.destinations)):
            if tokens is not None and len(tokens) != len(urls):
                raise SubmitError(f"files.{i}.{name}: {len(tokens)} tokens for {len(urls)} URLs")
    return request


def storage_element(url: str) -> str:
    """FTS's name of a storage element: scheme://host[:port] (davs and https count as one)."""
    parts = urlsplit(url)
    scheme = "davs" if parts.scheme in ("https", "davs") else parts.scheme
    return f"{scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
