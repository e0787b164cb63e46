"""A production's steering file (YAML): what to simulate, how many jobs, which steps, where outputs go.

    name: e-_1MeV_center            # the production; also the <tag> of its DIDs (mc.<campaign>.<name>...)
    campaign: J25a
    software: J25.1.0               # the JUNO software version (given to every job as JUNO_SOFTWARE_VERSION)
    args:                           # each step's options in the offline software's grammar (docs/payloads.md)
      detsim: gun --particles e- --momentums 1.0 --momentums-interp KineticEnergy
      elecsim: --rate 10            # optional for the other steps
    events_per_job: 100
    jobs: 10
    workflow: [detsim, elecsim, cal, rec]   # any prefix of detsim elecsim cal rec
    conditions_tag: GT-2025-01      # for cal
    run: 1234                       # for cal
    output_storage: site-local      # or a DISK RSE (the jobs then run at its site)
    destinations: [IHEP_DISK]       # RSE expressions the final outputs are replicated to (the policy's rules)
    lifetime: null                  # of the final outputs' rules: null = the policy's, else "90 days"/seconds
    resources:                      # per step, optional
      detsim: {memory_mb: 1500, cores: 1, walltime: 2 hours}

The planner gives each job its `--evtmax`, `--seed`, `--input`, `--output` (and cal's `--tag`, `--run`), then
`args`; `juno-prod submit` parses job 1's command lines before anything is stored (an option given twice, an
unknown one or an unknown generator is refused there). Every problem is reported with the file and the field
(`SteeringError`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from juno_dcs.errors import ConfigError
from juno_dcs.placement.durations import DurationError, parse_duration
from juno_dcs.wms.models import check_soft_version
from juno_rucio_policy.naming import STEPS

Step = Literal["detsim", "elecsim", "cal", "rec"]
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")  # naming.py's campaign/tag label
SITE_LOCAL = "site-local"
MAX_JOBS = 999_999  # job numbers have 6 digits


class SteeringError(ConfigError):
    """A steering file that cannot be read or is not valid; the message names the file and each field."""


def _duration(value: Any) -> int | None:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(exc.reason) from None


def _positive_duration(value: Any) -> int:
    seconds = _duration(value)
    if seconds is None or seconds <= 0:
        raise ValueError("a positive duration is required, e.g. 3600 or '2 hours'")
    return seconds


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Resources(_Model):
    """What one job of a step asks of its slot."""

    memory_mb: Annotated[int, Field(ge=1, le=1_000_000)] = 250  # fits every site at scale 0.1
    cores: Annotated[int, Field(ge=1, le=1024)] = 1
    walltime: Annotated[int, BeforeValidator(_positive_duration)] = 3600  # seconds


class Steering(_Model):
    name: str = Field(description="the production's name, also the <tag> in its DIDs")
    campaign: str
    software: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_soft_version)]
    args: dict[Step, Annotated[str, Field(max_length=4000)]] = Field(
        description="per step: its options (detsim: and its generator), as `juno-payload <step>` takes them")
    events_per_job: Annotated[int, Field(ge=1, le=10_000_000)]
    jobs: Annotated[int, Field(ge=1, le=MAX_JOBS)]
    workflow: list[Step] = Field(min_length=1)
    conditions_tag: str | None = None
    run: Annotated[int, Field(ge=0, le=999_999)] | None = None
    output_storage: str = SITE_LOCAL
    destinations: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    lifetime: Annotated[int | None, BeforeValidator(_duration)] = None  # seconds; None: the policy's
    resources: dict[Step, Resources] = {}
    priority: int = 0
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    # When the final dataset gets its rules: "at_close" (default) once every final file is attached, so Rucio
    # evaluates the rule once over all of them; "at_start" at submission, so files move as they are made. Rucio's
    # judge pauses a growing dataset for 1 to 10 minutes whenever its locks are contended (attachments while
    # transfers finish), which made an at_start production wait ~9 minutes for its last files.
    final_rules: Literal["at_close", "at_start"] = "at_close"

    @field_validator("name", "campaign")
    @classmethod
    def _label(cls, value: str) -> str:
        if not LABEL.match(value):
            raise ValueError("1-32 letters, digits, '_' or '-', starting with a letter or digit "
                             "(it is part of the DID names mc.<campaign>.<name>...)")
        return value

    @field_validator("workflow")
    @classmethod
    def _prefix(cls, value: list[str]) -> list[str]:
        if tuple(value) != STEPS[:len(value)]:
            prefixes = ", ".join("[" + ", ".join(STEPS[:n]) + "]" for n in range(1, len(STEPS) + 1))
            raise ValueError(f"the workflow must be a prefix of detsim, elecsim, cal, rec: one of {prefixes}")
        return value

    @field_validator("output_storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if value != SITE_LOCAL and not re.match(r"^[A-Z0-9_-]{1,64}$", value):
            raise ValueError(f"'{SITE_LOCAL}' or the name of a DISK RSE such as IHEP_DISK")
        return value

    @model_validator(mode="after")
    def _step_needs(self) -> Steering:
        if "cal" in self.workflow:
            missing = [f for f in ("conditions_tag", "run") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"the cal step needs {' and '.join(missing)}")
        for field_name, given in (("resources", self.resources), ("args", self.args)):
            extra = sorted(set(given) - set(self.workflow))
            if extra:
                raise ValueError(f"{field_name} for steps not in the workflow: {', '.join(extra)}")
        if not self.args.get("detsim", "").strip():
            raise ValueError("args.detsim: the generator and its options are needed "
                             "(e.g. 'gun --particles e- --momentums 1.0')")
        return self

    def resources_of(self, step: str) -> Resources:
        return self.resources.get(step, Resources())  # type: ignore[call-overload, no-any-return]

    @property
    def final_step(self) -> str:
        return self.workflow[-1]


def parse_steering(data: Any, source: str = "<steering>") -> Steering:
    """The steering of `data` (parsed YAML); SteeringError names `source` and every faulty field."""
    if not isinstance(data, dict):
        shown = "empty" if data is None else f"a {type(data).__name__}"
        raise SteeringError(f"{source}: a steering file is a mapping (name, campaign, software, args, "
                            f"events_per_job, jobs, workflow, destinations, ...), not {shown}")
    try:
        return Steering.model_validate(data)
    except ValidationError as exc:
        raise SteeringError(f"{source}: " + "; ".join(_problem(e) for e in exc.errors())) from None


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"] if p != "[key]") or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{where}: {message}"


def load_steering(path: Path) -> Steering:
    """The steering file at `path`."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SteeringError(f"{path}: cannot read the steering file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SteeringError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_steering(data, str(path))
