"""One job's life in a pilot (PanDA pilot3's): stage-in, payload under limits, stage-out, log tarball, finish.

    run_job(job, settings, client, stagers, stop) -> FinishReport | None

Errors (docs/wms.md): 1099 stage-in, 1235 memory, 1305 payload exit code, 1213 walltime, 1137 stage-out (and the
log), 1144 kill command. A pilot stopped by SIGTERM fails its job with 1201 `lost` (the job was lost through no
fault of its own, so the retry rules run it again; 1144 is kept for a kill someone asked for). A job that the
dispatcher no longer gives this pilot (heartbeat 409) is stopped and not reported.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from juno_dcs.errors import JunoDcsError
from juno_dcs.pilot.heartbeat import Heartbeat
from juno_dcs.pilot.watch import Limits, PayloadResult, run_payload
from juno_dcs.wms.client import WmsClient, WmsError
from juno_dcs.wms.models import (
    ERROR_KILLED,
    ERROR_LOST,
    ERROR_MEMORY,
    ERROR_PAYLOAD,
    ERROR_STAGEIN,
    ERROR_STAGEOUT,
    ERROR_WALLTIME,
    FinishReport,
    JobDescription,
    LogFile,
    OutputFile,
    Resources,
)

logger = logging.getLogger(__name__)

PAYLOAD_STEPS = ("detsim", "elecsim", "cal", "rec")  # juno-payload sub-commands; "exec" runs args as a program
LOG_FILES = ("pilot.log", "payload.stdout", "payload.stderr", "job.json")
REASON_CODES = {"memory": ERROR_MEMORY, "walltime": ERROR_WALLTIME, "killed": ERROR_KILLED, "stopped": ERROR_LOST}


@dataclass(frozen=True)
class PilotSettings:
    """What `juno-pilot run` was started with: the slot it offers and where it works."""

    dispatcher: str
    site: str
    queue: str
    cores: int
    memory_mb: int
    walltime_s: int
    lifetime_s: float
    workdir: Path
    rucio_configs: Path
    pilot_id: str
    payload_program: str = "juno-payload"
    run_once: bool = False
    poll_s: float = 0.5
    grace_s: float = 5.0
    heartbeat_s: float | None = None  # None: a third of the job's lease, at most 60 s
    keep_workdir: bool = False
    stage_scheme: str | None = None  # the protocol stage-in and stage-out must use (None: Rucio's order)

    def memory_limit_mb(self, job: JobDescription) -> float:
        """The queue's memory for the job's cores: the slot's memory per core times the job's cores."""
        return self.memory_mb * job.cores / self.cores

    def owner_config(self, owner: str) -> Path:
        return self.rucio_configs / f"{owner}.cfg"


class Stager(Protocol):
    def stage_in(self, did: str, destination: Path, near: str) -> Path: ...

    def stage_out(self, path: Path, scope: str, name: str, dataset: str, rse: str) -> OutputFile: ...


StagerFactory = Callable[[PilotSettings, str], Stager]  # (settings, owner) -> the owner's stager


class JobFailure(JunoDcsError):
    """A job that failed in the pilot's hands: `code` is the dispatcher's error code (wms.models.ERROR_CODES)."""

    def __init__(self, code: int, diag: str) -> None:
        super().__init__(diag)
        self.code = code
        self.diag = diag


def payload_command(job: JobDescription, program: str) -> list[str]:
    if job.transformation == "exec":
        return list(job.args)
    if job.transformation in PAYLOAD_STEPS:
        return [program, job.transformation, *job.args]
    raise JobFailure(ERROR_PAYLOAD, f"unknown transformation {job.transformation!r}")


def _payload_env(job: JobDescription, settings: PilotSettings) -> dict[str, str]:
    env = dict(os.environ)
    # the JUNO software the pilot runs with (juno-payload, for user scripts that call it by name) comes first,
    # as a site's CVMFS release would be set up for the job
    software = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([software, *(p for p in env.get("PATH", "").split(os.pathsep) if p != software)])
    env.update({"RUCIO_CONFIG": str(settings.owner_config(job.owner)), "RUCIO_ACCOUNT": job.owner,
                "JUNO_JOB_ID": str(job.job_id), "JUNO_ATTEMPT": str(job.attempt), "JUNO_TASK_NAME": job.task_name,
                "JUNO_SITE": job.site, "JUNO_PILOT_ID": settings.pilot_id,
                "JUNO_MEMORY_LIMIT_MB": str(int(settings.memory_limit_mb(job)))})
    env.update(job.env)
    return env


def _check(hb: Heartbeat, stop: threading.Event, during: str) -> None:
    if hb.kill.is_set():
        raise JobFailure(ERROR_KILLED, f"killed by a command from the dispatcher during {during}")
    if stop.is_set():
        raise JobFailure(ERROR_LOST, f"the pilot was stopped (SIGTERM) during {during}")


class _JobRun:
    def __init__(self, job: JobDescription, settings: PilotSettings, client: WmsClient, stagers: StagerFactory,
                 stop: threading.Event) -> None:
        self.job = job
        self.settings = settings
        self.client = client
        self.stagers = stagers
        self.stop = stop
        self.dir = settings.workdir / f"job-{job.job_id}-{job.attempt}"
        interval = settings.heartbeat_s or max(1.0, min(job.lease_s / 3, 60.0))
        self.hb = Heartbeat(client, job.job_id, settings.pilot_id, interval)
        self._stager: Stager | None = None

    @property
    def stager(self) -> Stager:
        if self._stager is None:
            self._stager = self.stagers(self.settings, self.job.owner)
        return self._stager

    def stage_in(self) -> None:
        for did in self.job.inputs:
            _check(self.hb, self.stop, "stage-in")
            try:
                self.stager.stage_in(did, self.dir, self.job.output_rse)
            except Exception as exc:  # StageError, and whatever Rucio raises that it does not wrap
                raise JobFailure(ERROR_STAGEIN, f"stage-in of {did}: {exc}") from exc

    def payload(self) -> PayloadResult:
        command = payload_command(self.job, self.settings.payload_program)
        limits = Limits(memory_limit_mb=self.settings.memory_limit_mb(self.job),
                        walltime_s=min(self.job.walltime_s, self.settings.walltime_s),
                        poll_s=self.settings.poll_s, grace_s=self.settings.grace_s)
        return run_payload(command, cwd=self.dir, env=_payload_env(self.job, self.settings), limits=limits,
                           stop=self.stop, kill=self.hb.kill, stdout=self.dir / "payload.stdout",
                           stderr=self.dir / "payload.stderr")

    def stage_out(self) -> list[OutputFile]:
        done: list[OutputFile] = []
        for out in self.job.outputs:
            try:
                done.append(self.stager.stage_out(self.dir / out.name, out.scope, out.name, out.dataset,
                                                  self.job.output_rse))
            except Exception as exc:  # StageError, and whatever Rucio raises that it does not wrap
                raise JobFailure(ERROR_STAGEOUT, f"stage-out of {out.scope}:{out.name}: {exc}") from exc
        return done

    def log_tarball(self) -> LogFile | None:
        spec = self.job.log
        if spec is None:
            return None
        path = self.dir / spec.name
        with tarfile.open(path, "w:gz") as tar:
            for name in LOG_FILES:
                if (self.dir / name).is_file():
                    tar.add(self.dir / name, arcname=f"job-{self.job.job_id}-{self.job.attempt}/{name}")
        logger.info("log tarball %s: %d bytes", spec.name, path.stat().st_size)
        try:
            uploaded = self.stager.stage_out(path, spec.scope, spec.name, spec.dataset, self.job.output_rse)
        except Exception as exc:  # StageError, and whatever Rucio raises that it does not wrap
            raise JobFailure(ERROR_STAGEOUT, f"stage-out of the log {spec.scope}:{spec.name}: {exc}") from exc
        return LogFile(scope=uploaded.scope, name=uploaded.name, rse=uploaded.rse)

    def run(self) -> FinishReport | None:
        job = self.job
        logger.info("job %d (%s attempt %d, task %s, owner %s): %s %s", job.job_id, job.key, job.attempt,
                    job.task_name, job.owner, job.transformation, " ".join(job.args))
        self.hb.start()
        failure: JobFailure | None = None
        result: PayloadResult | None = None
        outputs: list[OutputFile] = []
        try:
            self.stage_in()
            _check(self.hb, self.stop, "stage-in")
            self.hb.set_state("running")
            result = self.payload()
            if result.reason is not None:
                raise JobFailure(REASON_CODES[result.reason], result.detail)
            if result.exit_code != 0:
                raise JobFailure(ERROR_PAYLOAD, f"the payload exited with code {result.exit_code}: "
                                 f"{_tail(self.dir / 'payload.stderr')}")
            self.hb.set_state("holding")
            outputs = self.stage_out()  # a stopping pilot still stages out a payload that succeeded
        except JobFailure as exc:
            failure = exc
            logger.error("job %d failed with %d: %s", job.job_id, exc.code, exc.diag)
        if self.hb.lost.is_set():
            logger.error("job %d is no longer this pilot's: not reported", job.job_id)
            return None
        self.hb.set_state("holding")
        log: LogFile | None = None
        try:
            log = self.log_tarball()
        except JobFailure as exc:
            logger.error("job %d: %s", job.job_id, exc.diag)
            if failure is None:
                failure = exc
            else:
                failure.diag += f"; and {exc.diag}"
        resources = Resources() if result is None else Resources(
            max_rss_mb=result.max_rss_mb, cpu_s=result.cpu_s, wall_s=result.wall_s)
        exit_code = None if result is None else result.exit_code
        if failure is None:
            return FinishReport(state="finished", exit_code=exit_code, outputs=outputs, log=log, resources=resources)
        return FinishReport(state="failed", exit_code=exit_code, error_code=failure.code,
                            error_diag=failure.diag[-4000:], outputs=outputs, log=log, resources=resources)


def _tail(path: Path, limit: int = 1000) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return " | ".join(text[-limit:].splitlines()[-5:])


def report_finish(client: WmsClient, job_id: int, pilot_id: str, report: FinishReport, *,
                  attempts: int = 6, first_delay_s: float = 2.0) -> bool:
    """finish(), tried again while the dispatcher is unreachable or answers 5xx; False when it was not taken."""
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            answer = client.finish(job_id, pilot_id, report)
        except WmsError as exc:
            if not exc.transient or attempt == attempts:
                logger.error("finish of job %d not accepted: %s", job_id, exc)
                return False
            logger.warning("finish of job %d: %s; trying again in %.0f s", job_id, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
            continue
        logger.info("job %d reported %s%s; the dispatcher has it %s", job_id, report.state,
                    f" ({report.error_code} {report.error_class})" if report.error_code else "",
                    answer.get("state", "?"))
        return True
    return False


def run_job(job: JobDescription, settings: PilotSettings, client: WmsClient, stagers: StagerFactory,
            stop: threading.Event) -> FinishReport | None:
    """Run one job to its finish report (None: the job is no longer this pilot's); its directory goes after."""
    run = _JobRun(job, settings, client, stagers, stop)
    if run.dir.exists():
        shutil.rmtree(run.dir)
    run.dir.mkdir(parents=True)
    (run.dir / "job.json").write_text(json.dumps(job.model_dump(mode="json"), indent=1))
    handler = logging.FileHandler(run.dir / "pilot.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        report = run.run()
        run.hb.stop()
        if report is not None:
            report_finish(client, job.job_id, settings.pilot_id, report)
        return report
    finally:
        run.hb.stop()
        root.removeHandler(handler)
        handler.close()
        if not settings.keep_workdir:
            shutil.rmtree(run.dir, ignore_errors=True)
