"""The YAML task file, validated once at the boundary into typed objects (docs/jsub.md).

It accepts JUNO JSUB's names where the features overlap (`taskName`, `experiment`, `softVersion`, `backend.type`,
`splitter.mode` splitByJobvars/splitByEvent, `jobvarLists` (or `jobvar_lists`, `jobvars`), `maxSubJobs`,
`evtMaxPerJob`, `njobs`, `workflow.steps`, the payload steps detsim, elecsim, calib (or cal) and rec with their
keys, step types `exe`/`cmd` with `actvar`, `outputSubDir`, `workSubdir`, `maxSubmit`), and refuses what this
system cannot honour with an error that names the file and the field. A payload step's key that is not an option
of that step (`rate` on detsim) is reported as ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from juno_dcs.jsub.errors import TaskFileError
from juno_dcs.wms.models import check_soft_version

# JSUB's step names -> the payload they run (`calib` is JSUB's name of the calibration step)
PAYLOAD_STEPS = {"detsim": "detsim", "elecsim": "elecsim", "calib": "cal", "cal": "cal", "rec": "rec"}
# The payload steps' keys and the payloads they apply to (the others are reported as ignored)
STEP_KEYS: dict[str, frozenset[str]] = {
    "seed": frozenset({"detsim", "elecsim"}), "evtmax": frozenset({"detsim", "elecsim", "cal", "rec"}),
    "input": frozenset({"elecsim", "cal", "rec"}), "output": frozenset({"detsim", "elecsim", "cal", "rec"}),
    "user_output": frozenset({"detsim", "elecsim"}), "rate": frozenset({"elecsim"}),
    "tag": frozenset({"cal"}), "run": frozenset({"cal"}), "particles": frozenset({"detsim"}),
    "momentums": frozenset({"detsim"}), "positions": frozenset({"detsim"}),
}

Positive = Annotated[int, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- jobvars ------------------------------------------------------------------------------------------------


class EnumerateVar(_Model):
    """An explicit list of values."""

    type: Literal["enumerate"]
    values: list[str | int | float] = Field(validation_alias=AliasChoices("list", "value", "values"), min_length=1)
    group: str | None = None


class RangeVar(_Model):
    """first, first+step, ... up to `last` or `length` values; with neither it takes the length of what it is
    zipped with (JSUB's unbounded range)."""

    type: Literal["range"]
    first: int = 1
    step: int = 1
    last: int | None = None
    length: Positive | None = None
    group: str | None = None

    @field_validator("step")
    @classmethod
    def _step_not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("step must not be 0")
        return value

    def bounded_values(self) -> list[int] | None:
        """The values, or None when unbounded."""
        if self.last is None and self.length is None:
            return None
        out: list[int] = []
        value = self.first
        while (self.length is None or len(out) < self.length) and (
            self.last is None or (value - self.last) * self.step <= 0
        ):
            out.append(value)
            value += self.step
        return out

    def value_at(self, index: int) -> int:
        return self.first + index * self.step


class LinesInFileVar(_Model):
    """One value per non-empty line of a text file (relative paths: to the task file)."""

    type: Literal["lines_in_file", "linesInFile"]
    file: str
    group: str | None = None


class CompositeStringVar(_Model):
    """A string built from other jobvars with $(name); it does not count for lengths."""

    type: Literal["composite_string", "compositeString"]
    value: str
    group: str | None = None


Jobvar = Annotated[EnumerateVar | RangeVar | LinesInFileVar | CompositeStringVar, Field(discriminator="type")]

# --- splitters ----------------------------------------------------------------------------------------------


class _SplitterBase(_Model):
    max_subjobs: Positive | None = Field(
        default=None, validation_alias=AliasChoices("maxSubJobs", "maxSubjobs", "max_subjobs"))
    evt_max_per_job: Positive | None = Field(
        default=None, validation_alias=AliasChoices("evtMaxPerJob", "evtMax", "evtmax"))
    seed: int = 1  # $(seed) of sub-job 1; +1 per sub-job unless a jobvar named seed exists


class SplitByJobvars(_SplitterBase):
    mode: Literal["splitByJobvars"]
    jobvars: dict[str, Jobvar] = Field(
        validation_alias=AliasChoices("jobvarLists", "jobvar_lists", "jobvars"), min_length=1)


class SplitByEvent(_SplitterBase):
    mode: Literal["splitByEvent"]
    total_events: Positive | None = Field(default=None, validation_alias=AliasChoices("totalEvents", "total_events"))
    njobs: Positive | None = None

    @model_validator(mode="after")
    def _enough(self) -> SplitByEvent:
        given = sum(x is not None for x in (self.total_events, self.evt_max_per_job, self.njobs))
        if given < 2:
            raise ValueError("splitByEvent needs two of totalEvents, evtMaxPerJob and njobs")
        return self


class SplitByDataset(_SplitterBase):
    mode: Literal["splitByDataset"]
    dataset: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,25}:[A-Za-z0-9][A-Za-z0-9_.-]{0,249}$")
    files_per_job: Positive = Field(default=1, validation_alias=AliasChoices("filesPerJob", "files_per_job"))


Splitter = Annotated[SplitByJobvars | SplitByEvent | SplitByDataset, Field(discriminator="mode")]

# --- backend and workflow -----------------------------------------------------------------------------------


class Backend(_Model):
    type: Literal["dispatcher", "local", "dirac"] = "dispatcher"  # dirac: JSUB's grid backend = the dispatcher
    url: str | None = None
    site: str | list[str] | None = None
    output_sub_dir: str | None = Field(default=None, validation_alias=AliasChoices("outputSubDir", "output_sub_dir"))
    output_dataset: str | None = Field(default=None, validation_alias=AliasChoices("outputDataset", "output_dataset"))
    work_dir: str | None = Field(default=None, validation_alias=AliasChoices("workDir", "work_dir"))
    work_subdir: str | None = Field(default=None, validation_alias=AliasChoices("workSubdir", "work_subdir"))
    max_submit: Positive = Field(default=2, validation_alias=AliasChoices("maxSubmit", "max_submit"))
    cores: Positive = 1
    memory_mb: Positive = Field(default=1000, validation_alias=AliasChoices("memoryMB", "memory_mb"))
    walltime_s: Positive = Field(default=3600, validation_alias=AliasChoices("walltime", "walltime_s"))
    max_attempts: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3, validation_alias=AliasChoices("maxAttempts", "max_attempts"))
    priority: int = 0

    @field_validator("site")
    @classmethod
    def _one_site(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 1:
            raise ValueError("the dispatcher pins a job to one site: give one site or none (brokerage chooses)")
        return value

    @property
    def kind(self) -> Literal["dispatcher", "local"]:
        return "local" if self.type == "local" else "dispatcher"

    @property
    def pinned_site(self) -> str | None:
        if isinstance(self.site, list):
            return self.site[0] if self.site else None
        return self.site


class Actvar(_Model):
    exe: str | None = None
    args: str = ""
    cmd: str | None = None
    location: str | None = None  # JSUB's input-sandbox location; here a local file is always embedded


class Step(_Model):
    """One step of the workflow: a JUNO payload (`juno-payload <step>`), a program (`exe`) or a shell line (`cmd`).

    Strings may hold $(var); lists of files named in `outputUpload` (and a payload step's `output`, unless
    `upload: false`) become the sub-job's outputs in the user's scope.
    """

    type: Literal["payload", "exe", "cmd"]
    payload: Literal["detsim", "elecsim", "cal", "rec"] | None = None
    # payload steps: the options of `juno-payload <payload>` (docs/payloads.md)
    seed: str | int | None = None
    evtmax: str | int | None = Field(default=None, validation_alias=AliasChoices("evtmax", "evtMax"))
    input: str | None = None
    output: str | None = None
    user_output: str | None = Field(default=None, validation_alias=AliasChoices("userOutput", "user_output"))
    rate: str | float | None = None
    tag: str | None = None
    run: str | int | None = None
    # detsim's gun, as JSUB's step keys (a space-separated string or a list)
    particles: str | list[str] | None = None
    momentums: str | float | list[str | float] | None = None
    positions: str | list[str | float] | None = None
    additional_args: str = Field(default="", validation_alias=AliasChoices("additionalArgs", "additional_args"))
    full_args: str | None = Field(default=None, validation_alias=AliasChoices("fullArgs", "full_args"))
    upload: bool = True
    # exe / cmd steps
    exe: str | None = None
    args: str = ""
    cmd: str | None = None
    actvar: Actvar | None = None
    output_upload: list[str] = Field(default=[], validation_alias=AliasChoices("outputUpload", "output_upload"))

    @field_validator("output_upload", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("output_upload")
    @classmethod
    def _no_wildcards(cls, value: list[str]) -> list[str]:
        for item in value:
            if any(c in item for c in "*?["):
                raise ValueError(f"{item!r}: wildcards are not supported, the dispatcher needs every output's "
                                 "name at submission: list the files (with $(jobid) etc.)")
        return value

    @model_validator(mode="after")
    def _complete(self) -> Step:
        if self.type == "payload" and self.payload is None:
            raise ValueError("a payload step needs `payload` (detsim, elecsim, cal or rec)")
        if self.type == "exe" and not (self.exe or (self.actvar and self.actvar.exe)):
            raise ValueError("an exe step needs `exe` (or actvar.exe): the program to run")
        if self.type == "cmd" and not (self.cmd or (self.actvar and self.actvar.cmd)):
            raise ValueError("a cmd step needs `cmd` (or actvar.cmd): the shell command line")
        return self

    def inapplicable(self) -> list[str]:
        """The payload step's keys that are not options of its payload."""
        if self.type != "payload":
            return []
        return [key for key, steps in STEP_KEYS.items()
                if getattr(self, key) is not None and self.payload not in steps]

    @property
    def program(self) -> str:
        return self.exe or (self.actvar.exe if self.actvar and self.actvar.exe else "")

    @property
    def program_args(self) -> str:
        return self.args or (self.actvar.args if self.actvar else "")

    @property
    def command(self) -> str:
        return self.cmd or (self.actvar.cmd if self.actvar and self.actvar.cmd else "")


class TaskFile(_Model):
    """A whole task file. `workflow` is read separately (its keys are step names) into `steps`."""

    task_name: str = Field(validation_alias=AliasChoices("taskName", "task_name"),
                           pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    experiment: Literal["juno", "common"] = "juno"
    # the offline software release (JSUB's softVersion); the jobs get it as JUNO_SOFTWARE_VERSION
    soft_version: Annotated[str, AfterValidator(check_soft_version)] | None = Field(
        default=None, validation_alias=AliasChoices("softVersion", "soft_version"), min_length=1, max_length=200)
    account: str | None = Field(default=None, pattern=r"^[a-z0-9_-]{1,25}$")
    backend: Backend = Backend()
    splitter: Splitter
    env: dict[str, str] = {}
    steps: list[tuple[str, Step]]
    ignored: list[str] = []  # keys accepted and not used, each with why (reported by create)
    path: str = ""  # where the task file was read (relative files in it are relative to its directory)

    @property
    def directory(self) -> Path:
        return Path(self.path).resolve().parent if self.path else Path.cwd()


def _step_raw(name: str, raw: Any) -> Any:
    if not isinstance(raw, dict):
        if raw is None and name in PAYLOAD_STEPS:
            raw = {}
        else:
            return raw
    raw = dict(raw)
    if "type" not in raw and name in PAYLOAD_STEPS:
        raw["type"] = "payload"
    if raw.get("type") == "payload" and "payload" not in raw and name in PAYLOAD_STEPS:
        raw["payload"] = PAYLOAD_STEPS[name]
    elif raw.get("payload") == "calib":
        raw["payload"] = "cal"
    return raw


def _problems(exc: ValidationError, prefix: str = "") -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"].removeprefix("Value error, ")
        where = f"{prefix}{loc}" if loc else prefix.rstrip(".")
        out.append(f"{where}: {msg}" if where else msg)
    return out


def parse_task(data: Any, path: str = "<task>") -> TaskFile:
    """The task from the YAML document `data`; TaskFileError lists every problem with `path` and its field."""
    if not isinstance(data, dict):
        raise TaskFileError(f"{path}: a task file is a YAML mapping (taskName, splitter, workflow...)")
    data = dict(data)
    problems: list[str] = []
    ignored: list[str] = []
    workflow = data.pop("workflow", None)
    steps: list[tuple[str, Step]] = []
    if not isinstance(workflow, dict) or not workflow:
        problems.append("workflow: required: a mapping of steps (and optionally `steps: [order]`)")
    else:
        order = workflow.get("steps")
        defs = {k: v for k, v in workflow.items() if k != "steps"}
        if order is None:
            order = list(defs)
        if not isinstance(order, list) or not order or not all(isinstance(s, str) for s in order):
            problems.append("workflow.steps: a non-empty list of step names")
            order = []
        if len(set(order)) != len(order):
            problems.append(f"workflow.steps: a step appears twice in {order}")
        for name in order:
            if name not in defs and name not in PAYLOAD_STEPS:
                problems.append(f"workflow.{name}: listed in workflow.steps but not defined")
                continue
            try:
                step = Step.model_validate(_step_raw(name, defs.get(name)))
            except ValidationError as exc:
                problems.extend(_problems(exc, f"workflow.{name}."))
                continue
            steps.append((name, step))
            ignored += [f"workflow.{name}.{key}: not an option of {step.payload}: ignored"
                        for key in step.inapplicable()]
        for name in defs:
            if name not in order:
                problems.append(f"workflow.{name}: defined but not listed in workflow.steps {order}")
    try:
        task = TaskFile.model_validate({**data, "steps": [], "ignored": ignored, "path": path})
    except ValidationError as exc:
        problems = _problems(exc) + problems
        task = None
    if problems or task is None:
        raise TaskFileError(f"{path}: " + "; ".join(problems))
    return task.model_copy(update={"steps": steps})


def load_task(path: Path) -> TaskFile:
    """Read and validate the task file at `path`."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TaskFileError(f"{path}: cannot read the task file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise TaskFileError(f"{path}: not valid YAML: {exc}") from exc
    return parse_task(data, str(path))
