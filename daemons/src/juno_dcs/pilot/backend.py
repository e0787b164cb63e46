"""Pilots as local processes: the factory's default backend.

Each pilot is `juno-pilot run ...` in its own session, its output in `<work_root>/logs/<pilot_id>.log`, and a
record `<work_root>/factory/pilots/<queue>/<pilot_id>.json` (pid and the process's start time) that every factory
on this machine reads to count what runs, so a second factory (or a restarted one) sees the pilots of the first.
A record whose process is gone is removed by whoever notices; the factory that started a pilot also reaps it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from juno_dcs.pilot.config import FactoryConfig, token_options
from juno_dcs.pilot.factory import PilotSlot

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PilotRecord:
    pilot_id: str
    queue: str
    pid: int
    create_time: float
    workdir: str

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return bool(abs(proc.create_time() - self.create_time) < 0.05 and proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False


def default_pilot_command() -> list[str]:
    return [str(Path(sys.executable).parent / "juno-pilot")]


class LocalProcessBackend:
    def __init__(self, config: FactoryConfig, *, base_env: dict[str, str] | None = None) -> None:
        self.config = config
        self.records = config.work_root / "factory" / "pilots"
        self.logs = config.work_root / "logs"
        self.base_env = dict(os.environ if base_env is None else base_env)
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._kill_at: dict[str, float] = {}  # pilot id -> when SIGKILL follows the SIGTERM

    # --- the Backend protocol
    def submit(self, slot: PilotSlot, n: int) -> list[str]:
        return [self._start(slot) for _ in range(n)]

    def running(self, queue: str) -> int:
        self.reap()
        return sum(1 for record in self._records(queue) if record.alive())

    def kill(self, queue: str, pilot_ids: Sequence[str] | None = None) -> int:
        wanted = None if pilot_ids is None else set(pilot_ids)
        count = 0
        for record in self._records(queue):
            if (wanted is None or record.pilot_id in wanted) and record.alive():
                logger.info("pilot %s (pid %d): SIGTERM", record.pilot_id, record.pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(record.pid, signal.SIGTERM)
                self._kill_at[record.pilot_id] = time.monotonic() + self.config.stop_grace_s
                count += 1
        return count

    # --- the processes
    def command(self, slot: PilotSlot, pilot_id: str, workdir: Path) -> list[str]:
        program = list(self.config.pilot_command) or default_pilot_command()
        return [*program, "run", "--dispatcher", self.config.dispatcher_url, "--site", slot.site,
                "--queue", slot.queue, "--cores", str(slot.cores), "--memory-mb", str(slot.memory_mb),
                "--walltime-s", str(slot.walltime_s), "--lifetime-s", str(slot.lifetime_s),
                "--workdir", str(workdir), "--rucio-configs", str(self.config.rucio_configs),
                "--pilot-id", pilot_id,
                *(["--stage-scheme", self.config.stage_scheme] if self.config.stage_scheme else []),
                *token_options(self.config.auth, self.config.dispatcher_audience)]

    def environment(self, slot: PilotSlot) -> dict[str, str]:
        env = {**self.base_env, **self.config.env}
        urls = self.config.conditions_urls.get(slot.site)
        if urls:
            env["JUNO_CONDITIONS_URLS"] = ",".join(urls)
        return env

    def _start(self, slot: PilotSlot) -> str:
        pilot_id = f"{slot.queue}-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        workdir = self.config.work_root / slot.queue / pilot_id
        workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{pilot_id}.log").open("ab") as log:
            proc = subprocess.Popen(self.command(slot, pilot_id, workdir), env=self.environment(slot),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            create_time = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            create_time = 0.0
        record = PilotRecord(pilot_id, slot.queue, proc.pid, create_time, str(workdir))
        folder = self.records / slot.queue
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{pilot_id}.tmp"
        tmp.write_text(json.dumps(record.__dict__))
        tmp.replace(folder / f"{pilot_id}.json")
        self._children[pilot_id] = proc
        logger.info("started pilot %s for %s (pid %d): %d cores, %d MB, lifetime %d s", pilot_id, slot.queue,
                    proc.pid, slot.cores, slot.memory_mb, slot.lifetime_s)
        return pilot_id

    def _records(self, queue: str) -> list[PilotRecord]:
        folder = self.records / queue
        if not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            try:
                out.append(PilotRecord(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):  # half-written by another factory, or removed meanwhile
                continue
        return out

    def reap(self) -> None:
        """Collect the exit codes of this factory's pilots, SIGKILL the ones past their grace, drop the records
        (and work dirs) of pilots that are gone."""
        for pilot_id, proc in list(self._children.items()):
            code = proc.poll()
            if code is not None:
                logger.info("pilot %s (pid %d) exited with %d", pilot_id, proc.pid, code)
                del self._children[pilot_id]
        now = time.monotonic()
        if not self.records.is_dir():
            return
        for folder in self.records.iterdir():
            for record in self._records(folder.name):
                if record.alive():
                    deadline = self._kill_at.get(record.pilot_id)
                    if deadline is not None and now > deadline:
                        logger.warning("pilot %s (pid %d) still there after its grace: SIGKILL", record.pilot_id,
                                       record.pid)
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.kill(record.pid, signal.SIGKILL)
                    continue
                self._kill_at.pop(record.pilot_id, None)
                (folder / f"{record.pilot_id}.json").unlink(missing_ok=True)
                shutil.rmtree(record.workdir, ignore_errors=True)

    def close(self) -> None:
        """Reap what has ended; running pilots go on (they are in their own sessions)."""
        self.reap()
