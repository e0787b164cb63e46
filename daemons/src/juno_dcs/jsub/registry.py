"""The local task registry: one JSON file per task under <registry>/tasks/<id>.json.

The registry is `--registry DIR`, else $JSUB_HOME, else ~/.jsub. Ids are small integers handed out under a
lock file, and every write replaces the task's file atomically (write, fsync, rename), so an interrupted
command leaves either the old record or the new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from juno_dcs.jsub.errors import RegistryError
from juno_dcs.wms.models import JobSpec


class PayloadCall(BaseModel):
    """A payload step's command line in a sub-job's script: checked before anything is queued."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    where: str  # the task file's field, e.g. workflow.detsim
    step: str  # detsim, elecsim, cal, rec
    argv: list[str]


class SubJobRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobid: int
    vars: dict[str, str]
    inputs: list[str] = []
    outputs: dict[str, str] = {}  # local file name -> DID name
    script: str
    spec: JobSpec
    payloads: list[PayloadCall] = []  # its payload steps' command lines (older records: none)
    job_id: int | None = None  # the dispatcher's, once submitted


class TaskRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    uid: str
    name: str
    created: str
    task_file: str
    task_text: str
    backend: Literal["dispatcher", "local"]
    url: str | None = None  # the dispatcher's
    account: str
    scope: str
    output_dataset: str
    log_dataset: str
    work_dir: str | None = None  # local backend
    max_submit: int = 2
    dispatcher_task: str
    task_id: int | None = None
    priority: int = 0
    submitted: bool = False
    datasets_created: bool = False
    warnings: list[str] = []
    subjobs: list[SubJobRecord]

    def subjob(self, jobid: int) -> SubJobRecord:
        for sub in self.subjobs:
            if sub.jobid == jobid:
                return sub
        raise RegistryError(f"task {self.id} has no sub-job {jobid} (it has 1..{len(self.subjobs)})")


def default_registry() -> Path:
    env = os.environ.get("JSUB_HOME")
    return Path(env) if env else Path.home() / ".jsub"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tasks_dir = root / "tasks"

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.tasks_dir.mkdir(parents=True, exist_ok=True)
        with (self.root / "lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _path(self, task_id: int) -> Path:
        return self.tasks_dir / f"{task_id}.json"

    def next_id(self) -> int:
        """A new id, reserved by an empty placeholder file (so two creates never get the same one)."""
        with self._lock():
            ids = [int(p.stem) for p in self.tasks_dir.glob("*.json") if p.stem.isdigit()]
            new = max(ids, default=0) + 1
            self._path(new).write_text("")
            return new

    def save(self, record: TaskRecord) -> None:
        self.tasks_dir.mkdir(parents=True, exist_ok=True)
        path = self._path(record.id)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as fh:
            fh.write(record.model_dump_json(indent=1))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)

    def load(self, task_id: int) -> TaskRecord:
        path = self._path(task_id)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise RegistryError(f"no task {task_id} in the registry {self.root} (see `jsub ls`)") from None
        if not text:
            raise RegistryError(f"task {task_id} in {self.root} is being created (or its create was interrupted)")
        try:
            return TaskRecord.model_validate(json.loads(text))
        except (ValueError, ValidationError) as exc:
            raise RegistryError(f"{path}: not a task record: {exc}") from exc

    def all(self) -> list[TaskRecord]:
        out: list[TaskRecord] = []
        if not self.tasks_dir.is_dir():
            return out
        for path in sorted(self.tasks_dir.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
            if path.stem.isdigit() and path.stat().st_size:
                with contextlib.suppress(RegistryError):
                    out.append(self.load(int(path.stem)))
        return out

    def delete(self, task_id: int) -> None:
        self._path(task_id).unlink(missing_ok=True)
