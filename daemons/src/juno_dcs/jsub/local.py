"""The local backend: sub-jobs as subprocesses in a work directory, with the pilot's layout.

    <work_dir>/<jobid:05d>/            the sub-job's directory (its cwd)
        state.json                     {state, pid, exit_code, attempt, error, started, ended}
        payload.stdout, payload.stderr the script's output (as the pilot names them)
        <uid>.<jobid>.log.tgz          the log tarball (what the pilot uploads)
        <uid>.<jobid>.<file>           the outputs, named as on the grid (they stay here)

States are the dispatcher's names: defined -> running -> finished | failed | cancelled. At most `max_submit`
sub-jobs run at once. `python -m juno_dcs.jsub.local REGISTRY TASK_ID [JOBID...]` runs them detached.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from juno_dcs.clikit import EXIT_CODES_EPILOG, KitCommand
from juno_dcs.jsub.registry import Registry, SubJobRecord, TaskRecord, now

StageIn = Callable[[Sequence[str], Path], None]  # DIDs -> files named by their names in the directory


def subjob_dir(task: TaskRecord, jobid: int) -> Path:
    return Path(task.work_dir or ".") / f"{jobid:05d}"


def read_state(task: TaskRecord, jobid: int) -> dict[str, Any]:
    path = subjob_dir(task, jobid) / "state.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"state": "defined" if task.submitted else "created", "attempt": 0}
    return data


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "state.json.tmp"
    tmp.write_text(json.dumps(state))
    tmp.replace(directory / "state.json")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def current_state(task: TaskRecord, jobid: int) -> str:
    """The sub-job's state; a `running` one whose process is gone (its runner was killed) is `failed`."""
    state = read_state(task, jobid)
    if state.get("state") == "running" and state.get("pid") and not _pid_alive(int(state["pid"])):
        return "failed"
    return str(state.get("state"))


def _tar_log(directory: Path, log_name: str) -> None:
    with tarfile.open(directory / log_name, "w:gz") as tar:
        for name in ("payload.stdout", "payload.stderr", "state.json"):
            if (directory / name).exists():
                tar.add(directory / name, arcname=name)


def _start(task: TaskRecord, sub: SubJobRecord, stage_in: StageIn | None) -> tuple[subprocess.Popen[bytes] | None,
                                                                                   dict[str, Any]]:
    directory = subjob_dir(task, sub.jobid)
    directory.mkdir(parents=True, exist_ok=True)
    previous = read_state(task, sub.jobid)
    state: dict[str, Any] = {"state": "running", "attempt": int(previous.get("attempt", 0)) + 1,
                             "started": now(), "pid": None, "exit_code": None, "error": None}
    if sub.inputs:
        try:
            if stage_in is None:
                raise RuntimeError("no Rucio client to download the inputs")
            stage_in(sub.inputs, directory)
        except Exception as exc:  # any stage-in failure fails the sub-job (the pilot's 1099)
            state.update(state="failed", error=f"stagein: {exc}", ended=now(), exit_code=None)
            (directory / "payload.stderr").write_text(f"jsub: stage-in failed: {exc}\n")
            _write_state(directory, state)
            _tar_log(directory, sub.spec.log.name if sub.spec.log else "log.tgz")
            return None, state
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # juno-payload of this installation
    env.update(sub.spec.env)
    with (directory / "payload.stdout").open("wb") as out, (directory / "payload.stderr").open("wb") as err:
        proc = subprocess.Popen(sub.spec.args, cwd=directory, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    state["pid"] = proc.pid
    _write_state(directory, state)
    return proc, state


def _finish(task: TaskRecord, sub: SubJobRecord, proc: subprocess.Popen[bytes], state: dict[str, Any]) -> None:
    directory = subjob_dir(task, sub.jobid)
    code = proc.returncode
    state.update(exit_code=code, ended=now())
    if read_state(task, sub.jobid).get("state") == "cancelled":
        state["state"] = "cancelled"
    elif code != 0:
        state.update(state="failed", error=f"payload: exit code {code}")
    else:
        missing = [local for local, did in sub.outputs.items() if not (directory / did).exists()]
        if missing:
            state.update(state="failed", error=f"stageout: missing outputs {missing}")
        else:
            state["state"] = "finished"
    _write_state(directory, state)
    _tar_log(directory, sub.spec.log.name if sub.spec.log else "log.tgz")


def run(task: TaskRecord, jobids: Sequence[int] | None = None, stage_in: StageIn | None = None,
        poll: float = 0.1) -> dict[int, str]:
    """Run the sub-jobs `jobids` (all by default), `task.max_submit` at a time; their final states."""
    todo = [s for s in task.subjobs if jobids is None or s.jobid in jobids]
    for sub in todo:  # every chosen sub-job is defined (queued) before any starts
        state = read_state(task, sub.jobid)
        _write_state(subjob_dir(task, sub.jobid), {**state, "state": "defined", "pid": None})
    running: list[tuple[SubJobRecord, subprocess.Popen[bytes], dict[str, Any]]] = []
    queue = list(todo)
    while queue or running:
        while queue and len(running) < max(1, task.max_submit):
            sub = queue.pop(0)
            if read_state(task, sub.jobid).get("state") == "cancelled":
                continue
            proc, state = _start(task, sub, stage_in)
            if proc is not None:
                running.append((sub, proc, state))
        for item in list(running):
            if item[1].poll() is not None:
                _finish(task, *item)
                running.remove(item)
        if running:
            time.sleep(poll)
    return {s.jobid: current_state(task, s.jobid) for s in todo}


def kill(task: TaskRecord) -> int:
    """Cancel every sub-job not yet ended (kills its process group); how many were cancelled."""
    count = 0
    for sub in task.subjobs:
        state = read_state(task, sub.jobid)
        if state.get("state") not in ("defined", "running"):
            continue
        pid = state.get("pid")
        _write_state(subjob_dir(task, sub.jobid), {**state, "state": "cancelled", "ended": now()})
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGTERM)
        count += 1
    return count


def spawn(registry: Path, task: TaskRecord, jobids: Sequence[int] | None = None) -> int:
    """Run the sub-jobs in a detached runner process (`setsid -f`: it outlives this one and is nobody's
    child to wait for); its pid, which it writes to <work_dir>/runner.pid."""
    work = Path(task.work_dir or ".")
    pid_file = work / "runner.pid"
    pid_file.unlink(missing_ok=True)
    args = ["setsid", "-f", sys.executable, "-m", "juno_dcs.jsub.local", str(registry), str(task.id)]
    args += [str(j) for j in jobids or []]
    with (work / "runner.log").open("ab") as log:
        subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return int(pid_file.read_text())
        time.sleep(0.05)
    return 0


@click.command("juno_dcs.jsub.local", cls=KitCommand, epilog=EXIT_CODES_EPILOG)
@click.argument("registry", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("task_id", type=click.IntRange(min=0))
@click.argument("jobids", type=click.IntRange(min=0), nargs=-1)
def main(registry: Path, task_id: int, jobids: tuple[int, ...]) -> None:
    """The detached runner of a local task (started by `spawn`): run TASK_ID's sub-jobs (JOBIDS, else all)."""
    task = Registry(registry).load(task_id)
    (Path(task.work_dir or ".") / "runner.pid").write_text(str(os.getpid()))
    from juno_dcs.jsub.rucio import stage_in_from_config

    run(task, list(jobids) or None, stage_in_from_config())


if __name__ == "__main__":
    main(prog_name="python -m juno_dcs.jsub.local")
