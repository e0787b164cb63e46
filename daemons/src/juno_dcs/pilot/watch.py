"""Run a payload in its own process group and watch its whole process tree.

    run_payload(command, ...) -> PayloadResult

The tree's resident memory (RSS summed over the payload and every descendant, polled with psutil) is held under
`memory_limit_mb`, its wall time under `walltime_s`; an Event (a kill command, a stopping pilot) ends it early.
When a limit is hit the tree is killed and `PayloadResult.reason` says why. Peak RSS and CPU seconds are
measured for the finish report.

The payload is started through util-linux `setpriv --pdeathsig KILL`, so a pilot that dies without cleaning up
(SIGKILL, OOM killer) takes its payload with it instead of leaving it running in a slot the dispatcher has
already given back. The death signal reaches the payload's own process only; children it forks itself are
killed by the pilot's normal paths (limits, kill, stop, `_leftovers`) but not when the pilot is SIGKILLed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

logger = logging.getLogger(__name__)

StopReason = Literal["memory", "walltime", "killed", "stopped"]
MB = 1024 * 1024
SETPRIV = shutil.which("setpriv")


@dataclass(frozen=True)
class PayloadResult:
    """How a payload ended: its exit code (negative: killed by that signal) and why the pilot ended it, if it did."""

    exit_code: int
    reason: StopReason | None
    max_rss_mb: float
    cpu_s: float
    wall_s: float
    detail: str = ""


@dataclass(frozen=True)
class Limits:
    memory_limit_mb: float
    walltime_s: float
    poll_s: float = 0.5
    grace_s: float = 5.0  # SIGTERM -> SIGKILL for walltime, kill and stop (memory is SIGKILLed at once)


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _sample(procs: Sequence[psutil.Process], cpu_by_proc: dict[tuple[int, float], float]) -> float:
    """RSS in MB summed over the processes still alive; their CPU seconds are recorded in `cpu_by_proc`."""
    rss = 0.0
    for proc in procs:
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                cpu_by_proc[(proc.pid, proc.create_time())] = times.user + times.system
        except psutil.Error:  # gone between listing and reading
            continue
    return rss / MB


def kill_tree(proc: subprocess.Popen[bytes], pgid: int, grace_s: float) -> None:
    """SIGTERM the payload's process group and any descendant that left it, SIGKILL what is left after grace_s
    (grace_s 0: SIGKILL at once)."""
    try:
        members = _tree(psutil.Process(proc.pid))
    except psutil.Error:
        members = []
    first = signal.SIGKILL if grace_s <= 0 else signal.SIGTERM
    for sig in (first, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        for member in members:
            with contextlib.suppress(psutil.Error):
                member.send_signal(sig)
        if sig == signal.SIGKILL:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if proc.poll() is not None and not any(_alive(m) for m in members[1:]):
                return
            time.sleep(0.1)


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _resolve(program: str, cwd: Path, env: Mapping[str, str]) -> str | None:
    """The executable `program` names, looked up as exec would in the payload (PATH of `env`, relative to
    `cwd`), or None: a missing program is reported by the pilot, not as setpriv's exit code 127."""
    if "/" in program:
        return shutil.which(str(cwd / program))  # an absolute program stays itself under cwd / program
    return shutil.which(program, path=os.pathsep.join(os.get_exec_path(dict(env))))


def _with_death_signal(command: Sequence[str], cwd: Path, env: Mapping[str, str]) -> list[str]:
    """`command` under `setpriv --pdeathsig KILL` (setpriv execs it: same pid, same exit code, same signals)."""
    if SETPRIV is None:
        return list(command)
    resolved = _resolve(command[0], cwd, env)
    if resolved is None:
        raise FileNotFoundError(f"no executable {command[0]!r} in the payload's PATH or directory")
    return [SETPRIV, "--pdeathsig", "KILL", "--", resolved, *command[1:]]


def run_payload(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], limits: Limits,
                stop: threading.Event, kill: threading.Event, stdout: Path, stderr: Path) -> PayloadResult:
    """Run `command` to its end or until a limit or an Event ends it; see the module docstring."""
    start = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with stdout.open("wb") as out, stderr.open("wb") as err:
        try:
            proc = subprocess.Popen(_with_death_signal(command, cwd, env), cwd=cwd, env=dict(env), stdout=out,
                                    stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:  # no such program, not executable
            err.write(f"cannot start {command[0]}: {exc}\n".encode())
            return PayloadResult(127, None, 0.0, 0.0, 0.0, f"cannot start {command[0]}: {exc}")
    pgid = proc.pid  # start_new_session: the payload leads its own group
    logger.info("payload started: pid %d, memory limit %.0f MB, walltime %.0f s: %s", proc.pid,
                limits.memory_limit_mb, limits.walltime_s, " ".join(command))
    root = psutil.Process(proc.pid)
    max_rss = cpu_seen = 0.0
    reason: StopReason | None = None
    detail = ""
    cpu_by_pid: dict[tuple[int, float], float] = {}  # (pid, create time) -> last CPU seen, for exited children
    while proc.poll() is None:
        procs = _tree(root)
        rss = _sample(procs, cpu_by_pid)
        cpu_seen = max(cpu_seen, sum(cpu_by_pid.values()))
        max_rss = max(max_rss, rss)
        elapsed = time.monotonic() - start
        if rss > limits.memory_limit_mb:
            reason = "memory"
            detail = (f"the payload's processes used {rss:.0f} MB of resident memory, more than the limit of "
                      f"{limits.memory_limit_mb:.0f} MB")
        elif elapsed > limits.walltime_s:
            reason = "walltime"
            detail = f"the payload ran {elapsed:.0f} s, longer than its walltime of {limits.walltime_s:.0f} s"
        elif kill.is_set():
            reason = "killed"
            detail = "the payload was killed by a command from the dispatcher"
        elif stop.is_set():
            reason = "stopped"
            detail = "the pilot was stopped (SIGTERM) while the payload ran"
        if reason is not None:
            logger.warning("killing the payload (pid %d): %s", proc.pid, detail)
            kill_tree(proc, pgid, 0 if reason == "memory" else limits.grace_s)
            break
        stop.wait(limits.poll_s)
    exit_code = proc.wait()
    _leftovers(pgid)
    # CPU of the payload and the descendants it waited for (the pilot runs one payload at a time); the sampled
    # total also counts descendants that were never waited for, so the larger one is kept
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seen = max(cpu_seen, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
    wall = time.monotonic() - start
    logger.info("payload ended: exit code %d after %.1f s, max RSS %.0f MB, CPU %.1f s", exit_code, wall,
                max_rss, cpu_seen)
    return PayloadResult(exit_code, reason, round(max_rss, 1), round(cpu_seen, 2), round(wall, 2), detail)


def _leftovers(pgid: int) -> None:
    """A payload that exited may leave daemons behind in its group: they go with it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    logger.info("killed processes the payload left behind in its process group %d", pgid)
