"""Control of the grid's supervisord (PyPI `supervisor`) through its XML-RPC interface."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
import xmlrpc.client
from dataclasses import dataclass
from typing import Any, cast

from juno_dcs.errors import ServiceError, ServiceTimeout
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.programs import venv_bin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    state: str  # RUNNING, STARTING, BACKOFF, STOPPED, EXITED, FATAL, ...
    pid: int
    description: str


class Supervisor:
    def __init__(self, home: GridHome, state: GridState) -> None:
        self.home = home
        self.state = state
        self.url = f"http://juno:{state.supervisor_password}@127.0.0.1:{state.ports.supervisor}/RPC2"

    def _proxy(self) -> Any:
        return xmlrpc.client.ServerProxy(self.url, allow_none=True)

    def pid(self) -> int | None:
        """supervisord's pid when it runs for this home, else None."""
        try:
            pid = int(self.home.supervisord_pid.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def running(self) -> bool:
        if self.pid() is None:
            return False
        try:
            return cast(str, self._proxy().supervisor.getState()["statename"]) == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def start(self, timeout: float = 30.0) -> None:
        """Start supervisord (it daemonizes) and wait until it answers."""
        proc = subprocess.run(
            [venv_bin("supervisord"), "-c", str(self.home.supervisord_conf)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise ServiceError(f"supervisord did not start: {proc.stderr.strip() or proc.stdout.strip()}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running():
                return
            time.sleep(0.2)
        raise ServiceTimeout(f"supervisord did not answer on port {self.state.ports.supervisor} in {timeout:.0f} s")

    def update(self) -> list[str]:
        """Apply a changed supervisord.conf like `supervisorctl update`: add, restart or remove exactly the
        programs whose sections changed. Returns what was done, one line per program."""
        proxy = self._proxy()
        [[added, changed, removed]] = proxy.supervisor.reloadConfig()
        done: list[str] = []
        for name in removed:
            # stop first: removeProcessGroup refuses running groups
            with contextlib.suppress(xmlrpc.client.Fault):
                proxy.supervisor.stopProcessGroup(name)
            proxy.supervisor.removeProcessGroup(name)
            done.append(f"removed {name}")
        for name in changed:
            with contextlib.suppress(xmlrpc.client.Fault):
                proxy.supervisor.stopProcessGroup(name)
            proxy.supervisor.removeProcessGroup(name)
            proxy.supervisor.addProcessGroup(name)
            done.append(f"restarted {name} (configuration changed)")
        for name in added:
            proxy.supervisor.addProcessGroup(name)
            done.append(f"added {name}")
        return done

    def start_all(self) -> None:
        """Start whatever is stopped (e.g. after a manual stop); running programs are left alone."""
        proxy = self._proxy()
        for info in self.processes():
            if info.state in {"STOPPED", "EXITED", "FATAL", "BACKOFF"}:
                with contextlib.suppress(xmlrpc.client.Fault):
                    proxy.supervisor.startProcess(info.name, False)

    def process(self, name: str) -> ProcessInfo:
        """One program's state, like `supervisorctl status NAME`."""
        try:
            with self._proxy() as proxy:
                i = proxy.supervisor.getProcessInfo(name)
        except xmlrpc.client.Fault as exc:
            raise ServiceError(f"supervisor: no program {name!r} ({exc.faultString})") from exc
        return ProcessInfo(name=i["name"], state=i["statename"], pid=int(i["pid"]), description=i["description"])

    def stop_program(self, name: str) -> None:
        """`supervisorctl stop NAME`: returns once it has stopped (within its stopwaitsecs); stopped already is fine."""
        try:
            with self._proxy() as proxy:  # closes its connection (a test process would warn of the open socket)
                proxy.supervisor.stopProcess(name, True)
        except xmlrpc.client.Fault as exc:
            if "NOT_RUNNING" not in exc.faultString:
                raise ServiceError(f"supervisor: stopping {name} failed: {exc.faultString}") from exc

    def start_program(self, name: str) -> None:
        """`supervisorctl start NAME`: returns once it counts as started (RUNNING for its startsecs); running
        already is fine. It is not necessarily ready to serve: wait for its health check."""
        try:
            with self._proxy() as proxy:
                proxy.supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as exc:
            if "ALREADY_STARTED" not in exc.faultString:
                log = self.home.logs / f"{name}.log"
                raise ServiceError(f"supervisor: starting {name} failed: {exc.faultString} (see {log})") from exc

    def restart_program(self, name: str) -> None:
        """`supervisorctl restart NAME`."""
        self.stop_program(name)
        self.start_program(name)

    def processes(self) -> list[ProcessInfo]:
        with self._proxy() as proxy:
            infos = proxy.supervisor.getAllProcessInfo()
        return [
            ProcessInfo(name=i["name"], state=i["statename"], pid=int(i["pid"]), description=i["description"])
            for i in infos
        ]

    def shutdown(self, timeout: float = 90.0, graceful: bool = True) -> list[int]:
        """Stop every program and supervisord itself; kill what is left after `timeout`.
        Returns the pids that had to be killed. Not `graceful` (a grid about to be purged, whose data goes
        anyway): supervisord and every program's process group are killed at once, not stopped one by one."""
        pid = self.pid()
        if pid is None:
            return []
        children = [p.pid for p in self.processes() if p.pid] if self.running() else []
        if not graceful:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # first: it would start again what is killed below
            return _reap(pid, children, 0.0, warn=False)
        with contextlib.suppress(OSError, xmlrpc.client.Error):
            self._proxy().supervisor.shutdown()
        return _reap(pid, children, timeout)


def supervisord_of(home: GridHome) -> int | None:
    """The pid of a supervisord running for `home` (its command line names the home's supervisord.conf), found by
    its pid file or, failing that, among all processes; None when there is none. Needs no grid.json: it finds
    the supervisor of a half-started or half-deleted home."""
    conf = str(home.supervisord_conf).encode()

    def runs_it(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return False
        return any(arg.endswith(b"supervisord") for arg in argv[:2]) and conf in argv and _alive(pid)

    with contextlib.suppress(FileNotFoundError, ValueError):
        recorded = int(home.supervisord_pid.read_text().strip())
        if runs_it(recorded):
            return recorded
    return next((int(e) for e in os.listdir("/proc") if e.isdigit() and runs_it(int(e))), None)


def terminate(pid: int, timeout: float = 90.0) -> list[int]:
    """Stop a supervisord without its XML-RPC password (SIGTERM: it stops its programs, then itself); kill its
    process group and its children if they outlive `timeout`. Returns the pids that had to be killed."""
    children = _children(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    return _reap(pid, children, timeout)


def _reap(pid: int, children: list[int], timeout: float, warn: bool = True) -> list[int]:
    """Wait up to `timeout` for a stopping supervisord; then SIGKILL the process group of it and of each child
    still alive (each `warn`ed of). Returns the pids that had to be killed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    killed = []
    for leftover in [pid, *children]:
        if _alive(leftover):
            if warn:
                logger.warning("process %d still alive after shutdown, killing its group", leftover)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(leftover, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
            killed.append(leftover)
    return killed


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie counts as gone
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
