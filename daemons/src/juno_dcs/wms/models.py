"""The dispatcher's typed messages (docs/wms.md): what tasks, jobs, pilots and finish reports look like.

Every body the HTTP API accepts is one of these models (unknown fields are refused), and the Python client
speaks them too, so the pilot, the production manager and jsub share one definition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from juno_dcs.topology.models import RELEASE_NAME, matching

# --- states (PanDA's)
DEFINED, ASSIGNED, ACTIVATED, SENT, STARTING, RUNNING, HOLDING = (
    "defined", "assigned", "activated", "sent", "starting", "running", "holding")
FINISHED, FAILED, CANCELLED = "finished", "failed", "cancelled"
JOB_STATES: tuple[str, ...] = (DEFINED, ASSIGNED, ACTIVATED, SENT, STARTING, RUNNING, HOLDING,
                               FINISHED, FAILED, CANCELLED)
LEASED_STATES: tuple[str, ...] = (SENT, STARTING, RUNNING, HOLDING)  # a pilot holds the job, under a lease
FINAL_STATES: tuple[str, ...] = (FINISHED, FAILED, CANCELLED)
PILOT_STATES: tuple[str, ...] = (STARTING, RUNNING, HOLDING)  # what a heartbeat may report
JobState = Literal["defined", "assigned", "activated", "sent", "starting", "running", "holding",
                   "finished", "failed", "cancelled"]
PilotState = Literal["starting", "running", "holding"]
FinishState = Literal["finished", "failed"]

TRANSFORMATIONS: tuple[str, ...] = ("detsim", "elecsim", "cal", "rec", "exec")
Transformation = Literal["detsim", "elecsim", "cal", "rec", "exec"]
TaskKind = Literal["production", "user"]

# --- error codes (the pilot sets them; the retry rules match them). Each is the PanDA pilot's code of the same
# meaning (pilot3 pilot/common/errorcodes.py), so that operators who know PanDA read them right.
ERROR_CODES: dict[int, str] = {
    1099: "stagein",  # STAGEINFAILED
    1137: "stageout",  # STAGEOUTFAILED
    1144: "killed",  # PANDAKILL: killed by a command to the dispatcher
    1201: "lost",  # SIGTERM: the pilot was stopped (or went silent and its lease ended)
    1213: "walltime",  # REACHEDMAXTIME
    1235: "memory",  # PAYLOADEXCEEDMAXMEM
    1305: "payload",  # PAYLOADEXECUTIONFAILURE: the payload exited non-zero
}
ERROR_CLASSES: dict[str, int] = {cls: code for code, cls in ERROR_CODES.items()}
ERROR_STAGEIN, ERROR_MEMORY, ERROR_PAYLOAD, ERROR_WALLTIME = 1099, 1235, 1305, 1213
ERROR_STAGEOUT, ERROR_LOST, ERROR_KILLED = 1137, 1201, 1144
# the codes of releases before 0.2, which reused PanDA's numbers with other meanings (the dispatcher's migration
# rewrites stored jobs with this map)
OLD_ERROR_CODES: dict[int, int] = {1137: 1235, 1150: 1305, 1152: 1213, 1200: 1137, 1300: 1201, 1400: 1144}

_DID = re.compile(r"[A-Za-z0-9_.-]{1,25}:[A-Za-z0-9_.+/-]{1,250}")
Did = Annotated[str, StringConstraints(pattern=_DID.pattern)]  # "scope:name"
Name = Annotated[str, StringConstraints(min_length=1, max_length=250)]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=25)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Release = Annotated[str, AfterValidator(matching(RELEASE_NAME, "release"))]


def release_name(soft_version: str) -> str:
    """The release of a software version as JSUB and steering files give it: `J25.1.0`, or a CVMFS path
    (`centos7_amd64_gcc830/Pre-Release/J20v1r0-Pre2`) whose last part is the release."""
    return soft_version.strip().rstrip("/").rsplit("/", 1)[-1]


def releases_words(where: Mapping[str, Sequence[str]]) -> str:
    """Releases with the sites that have them, in words: "J24.1.0 (CNAF, IHEP), J25.1.0 (IHEP)"."""
    return ", ".join(f"{r} ({', '.join(sorted(sites))})" for r, sites in sorted(where.items())) or "none"


def check_soft_version(soft_version: str) -> str:
    """`soft_version` when its release is a release name (a pydantic validator's ValueError otherwise)."""
    release = release_name(soft_version)
    if not RELEASE_NAME.fullmatch(release):
        raise ValueError(f"release {release!r} (the last part of {soft_version!r}) must match "
                         f"^{RELEASE_NAME.pattern}$")
    return soft_version


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutputSpec(_Strict):
    """An output file the job must produce, upload and attach to `dataset`."""

    scope: Scope
    name: Name
    dataset: Did


class LogSpec(_Strict):
    """Where the job's log tarball goes."""

    scope: Scope
    name: Name
    dataset: Did


class JobSpec(_Strict):
    """One job as a task submits it. `key` is unique within the task (idempotent re-submission)."""

    key: Short
    transformation: Transformation
    args: list[str] = []
    env: dict[str, str] = {}
    inputs: list[Did] = []
    outputs: list[OutputSpec] = []
    log: LogSpec | None = None
    cores: Annotated[int, Field(ge=1, le=1024)] = 1
    memory_mb: Annotated[int, Field(ge=1)] = 250  # real MB: every site fits it
    walltime_s: Annotated[int, Field(ge=1)] = 3600
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    priority: int = 0
    site: Short | None = None
    release: Release | None = None  # the offline-software release: only sites that have it run the job

    @model_validator(mode="after")
    def _exec_has_program(self) -> JobSpec:
        if self.transformation == "exec" and not self.args:
            raise ValueError("transformation 'exec' needs args[0], the program to run")
        return self


class TaskSpec(_Strict):
    """POST /v1/tasks."""

    name: Short
    kind: TaskKind
    # the owner is the token's subject: a body may leave it out, and naming anyone else is refused (403)
    owner: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,25}$")] | None = None
    priority: int = 0
    jobs: list[JobSpec] = []

    @model_validator(mode="after")
    def _unique_keys(self) -> TaskSpec:
        _check_unique_keys(self.jobs)
        return self


class AddJobs(_Strict):
    """POST /v1/tasks/{task_id}/jobs."""

    jobs: list[JobSpec]

    @model_validator(mode="after")
    def _unique_keys(self) -> AddJobs:
        _check_unique_keys(self.jobs)
        return self


def _check_unique_keys(jobs: list[JobSpec]) -> None:
    seen: set[str] = set()
    for i, job in enumerate(jobs):
        if job.key in seen:
            raise ValueError(f"jobs[{i}].key {job.key!r} appears twice in this request")
        seen.add(job.key)


class JobDescription(JobSpec):
    """What a pilot receives from getjob: the JobSpec plus where and as what it runs."""

    job_id: int
    task_id: int
    task_name: str
    owner: str
    attempt: int
    site: str  # always set once brokered
    queue: str
    output_rse: str
    lease_s: int


class OutputFile(_Strict):
    """An output as the pilot uploaded and registered it."""

    scope: Scope
    name: Name
    bytes: Annotated[int, Field(ge=0)]
    adler32: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{1,8}$")]
    rse: Short


class LogFile(_Strict):
    scope: Scope
    name: Name
    rse: Short


class Resources(_Strict):
    max_rss_mb: Annotated[float, Field(ge=0)] = 0.0
    cpu_s: Annotated[float, Field(ge=0)] = 0.0
    wall_s: Annotated[float, Field(ge=0)] = 0.0


class FinishReport(_Strict):
    """The pilot's final word on a job (without its pilot_id, which the client adds).

    A failure names its error: `error_code` from ERROR_CODES, `error_class` its class (filled in when omitted).
    The dispatcher then classifies the failure (juno_dcs.wms.classify) and keeps the finer class it finds in the
    job's `error_class`; `error_code` stays the pilot's.
    """

    state: FinishState
    exit_code: int | None = None
    error_code: int | None = None
    error_class: str | None = None
    error_diag: Annotated[str, StringConstraints(max_length=4000)] = ""
    outputs: list[OutputFile] = []
    log: LogFile | None = None
    resources: Resources = Resources()

    @model_validator(mode="after")
    def _error_fits_state(self) -> FinishReport:
        if self.state == "finished":
            if self.error_code not in (None, 0) or self.error_class:
                raise ValueError("a finished job has no error_code or error_class")
            return self
        if self.error_code is None and self.error_class is None:
            raise ValueError(f"a failed job needs error_code (one of {sorted(ERROR_CODES)}) or error_class")
        if self.error_code is not None and self.error_code not in ERROR_CODES:
            raise ValueError(f"error_code {self.error_code} is not one of {sorted(ERROR_CODES)}")
        if self.error_class is not None and self.error_class not in ERROR_CLASSES:
            raise ValueError(f"error_class {self.error_class!r} is not one of {sorted(ERROR_CLASSES)}")
        if self.error_code is None:
            object.__setattr__(self, "error_code", ERROR_CLASSES[self.error_class or ""])
        elif self.error_class is None:
            object.__setattr__(self, "error_class", ERROR_CODES[self.error_code])
        elif ERROR_CODES[self.error_code] != self.error_class:
            raise ValueError(f"error_code {self.error_code} is {ERROR_CODES[self.error_code]!r}, "
                             f"not error_class {self.error_class!r}")
        return self


class FinishRequest(FinishReport):
    """POST /v1/pilot/jobs/{job_id}/finish."""

    pilot_id: Short


class GetJobRequest(_Strict):
    """POST /v1/pilot/getjob: what the pilot's slot offers."""

    pilot_id: Short
    site: Short
    queue: Short
    cores: Annotated[int, Field(ge=1)]
    memory_mb: Annotated[int, Field(ge=1)]
    walltime_s: Annotated[int, Field(ge=1)]


class HeartbeatRequest(_Strict):
    pilot_id: Short
    state: PilotState


class ReassignRequest(_Strict):
    site: Short | None = None


Command = Literal["continue", "kill"]
