"""The grid's stack on Docker Swarm, driven like the box's supervisor (grid/supervisor.py): the same calls, so
that `up`, `down`, `status` and the schema upgrades treat both alike."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from juno_dcs.errors import ServiceError, ServiceTimeout
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.supervisor import ProcessInfo
from juno_dcs.swarm.engine import Engine

logger = logging.getLogger(__name__)

UPDATE_START_S = 30.0  # how long `up` waits for the swarm to start a changed service's update
FAILURES_FATAL = 10  # failed tasks of a service that has none running (3 s apart): it is not coming up by itself
# (Kafka may fail a few times while ZooKeeper forgets its last session, as on the box)


def stack_name(home: GridHome) -> str:
    return f"juno-{home.tag}"


class SwarmRunner:
    """One grid's stack on one swarm (its manager's engine)."""

    def __init__(self, home: GridHome, state: GridState, engine: Engine) -> None:
        self.home = home
        self.state = state
        self.engine = engine
        self.stack = stack_name(home)
        self.stack_file = home.etc / "stack.yml"
        self.deployed_file = home.run / "stack.deployed.yml"

    # --- the stack as a whole
    def running(self) -> bool:
        proc = self.engine.run("stack", "services", "-q", self.stack, check=False)
        return proc.returncode == 0 and bool(proc.stdout.strip())

    def pid(self) -> int | None:
        """The supervisor's pid on a box; a stack has none (None when it does not run)."""
        return 0 if self.running() else None

    def _spec(self, path: Path) -> dict[str, Any]:
        if not path.exists():
            return {}
        return dict((yaml.safe_load(path.read_text()) or {}).get("services", {}))

    def _deploy(self) -> None:
        self._remove_unused(self._stack_objects(self.stack_file))
        self.engine.run("stack", "deploy", "--prune", "--resolve-image", "never", "-c", str(self.stack_file),
                        self.stack, timeout=300)
        self.home.run.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.stack_file, self.deployed_file)

    def _stack_objects(self, path: Path) -> set[str]:
        """The configs and secrets a stack file names, as the swarm calls them."""
        data = yaml.safe_load(path.read_text()) if path.exists() else {}
        return {f"{self.stack}_{name}" for kind in ("configs", "secrets") for name in (data or {}).get(kind) or {}}

    def _remove_unused(self, wanted: set[str]) -> None:
        """Earlier versions of the stack's configs and secrets that the next deployment no longer names. One that a
        task still uses (the swarm refuses to remove it) stays until a later `up`: a rolled-back service needs it."""
        for kind in ("config", "secret"):
            names = self.engine.run(kind, "ls", "--filter", f"label=com.docker.stack.namespace={self.stack}",
                                    "--format", "{{.Name}}", check=False).stdout.split()
            for name in names:
                if name not in wanted:
                    self.engine.run(kind, "rm", name, check=False)

    def start(self, timeout: float = 30.0) -> None:
        self._deploy()

    def update(self, timeout: float = 600.0) -> list[str]:
        """Deploy the stack file again: the swarm restarts exactly the services whose specification changed (a
        changed configuration changes its digest in the environment), rolling each back if it does not come up.
        Returns once every changed service's update has ended; one that was rolled back is an error naming it."""
        old, new = self._spec(self.deployed_file), self._spec(self.stack_file)
        changed = [n for n in new if n in old and old[n] != new[n]]
        done = [f"added {n}" for n in new if n not in old]
        done += [f"restarted {n} (configuration changed)" for n in changed]
        done += [f"removed {n}" for n in old if n not in new]
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
        self._deploy()
        self._wait_for_updates(changed, since, timeout)
        return done

    def _wait_for_updates(self, names: list[str], since: dt.datetime, timeout: float) -> None:
        """Wait until the update of each service that this deployment changed has ended (the swarm starts them a
        moment after `stack deploy` returns: an update not seen within UPDATE_START_S is taken as none)."""
        started_by = time.monotonic() + UPDATE_START_S
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            for name in list(pending):
                proc = self.engine.run("service", "inspect", "--format", "{{json .UpdateStatus}}",
                                       f"{self.stack}_{name}", check=False)
                status = (json.loads(proc.stdout or "null") if proc.returncode == 0 else None) or {}
                begun = str(status.get("StartedAt") or "")[:19]
                ours = bool(begun) and dt.datetime.fromisoformat(begun).replace(tzinfo=dt.UTC) >= since
                if not ours and time.monotonic() < started_by:
                    continue  # the swarm has not started this update yet
                state = status.get("State", "completed") if ours else "completed"
                if state in ("updating", "rollback_started"):
                    continue
                pending.remove(name)
                if state != "completed":  # rollback_completed, paused, rollback_paused
                    log = self.home.logs / f"{name}.log"
                    raise ServiceError(
                        f"{name} did not come up after its change and the swarm rolled it back ({state}: "
                        f"{status.get('Message', '')}); its previous specification and configuration run "
                        f"(see {log})")
            if pending and time.monotonic() > deadline:
                raise ServiceTimeout(f"the update of {', '.join(pending)} did not end in {timeout:.0f} s")
            if pending:
                time.sleep(1)

    def start_all(self) -> None:
        """Scale back to their replicas the services that were scaled to 0 (stopped by hand or by an upgrade)."""
        wanted = self._spec(self.stack_file)
        scaled_to_0 = {p.name for p in self.processes() if p.state == "STOPPED"}
        stopped = [f"{self.stack}_{name}={spec['deploy']['replicas']}" for name, spec in wanted.items()
                   if name in scaled_to_0]
        if stopped:
            self.engine.run("service", "scale", "--detach", *stopped)

    def shutdown(self, timeout: float = 90.0, graceful: bool = True) -> list[int]:
        """Remove the stack and wait until its containers are gone. Volumes stay. (`graceful` is the Runner's
        interface: Docker stops the containers either way.)"""
        self.engine.run("stack", "rm", self.stack, check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = self.engine.run("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={self.stack}",
                                   check=False).stdout.split()
            if not left:
                return []
            time.sleep(1)
        raise ServiceTimeout(f"the containers of stack {self.stack} were still there after {timeout:.0f} s")

    # --- programs (services)
    def processes(self) -> list[ProcessInfo]:
        """Each service as a program: RUNNING when all its replicas run (and are healthy), STOPPED when scaled to 0,
        FATAL when none runs and its tasks keep failing, STARTING otherwise."""
        services = [json.loads(line) for line in self.engine.run(
            "service", "ls", "--filter", f"label=com.docker.stack.namespace={self.stack}",
            "--format", "{{json .}}").stdout.splitlines() if line.strip()]
        tasks = [json.loads(line) for line in self.engine.run(
            "stack", "ps", "--no-trunc", "--format", "{{json .}}", self.stack, check=False).stdout.splitlines()
            if line.strip().startswith("{")]
        out = []
        for svc in services:
            name = svc["Name"].removeprefix(f"{self.stack}_")
            running, _, desired = svc["Replicas"].partition("/")
            run_n, want_n = int(running), int(desired.split()[0])
            mine = [t for t in tasks if t["Name"].split(".")[0].strip(" \\_") == svc["Name"]]
            # a task told to shut down (its node drained, the service updated) is still counted as running by
            # `service ls` until its container has gone; it no longer serves
            staying = [t for t in mine if t.get("DesiredState") == "Running"
                       and str(t.get("CurrentState", "")).startswith("Running")]
            run_n = min(run_n, len(staying))
            failed = [t for t in mine if t["CurrentState"].startswith(("Failed", "Rejected"))]
            if want_n == 0:
                state, why = "STOPPED", "scaled to 0"
            elif run_n >= want_n:
                state, why = "RUNNING", f"{run_n}/{want_n} replicas"
            elif run_n == 0 and len(failed) >= FAILURES_FATAL:
                last = failed[0].get("Error") or failed[0]["CurrentState"]
                state, why = "FATAL", f"{len(failed)} failed tasks, the last: {last}"
            else:
                state, why = "STARTING", f"{run_n}/{want_n} replicas"
            out.append(ProcessInfo(name=name, state=state, pid=0, description=why))
        return sorted(out, key=lambda p: p.name)

    def process(self, name: str) -> ProcessInfo:
        for info in self.processes():
            if info.name == name:
                return info
        raise ServiceError(f"stack {self.stack}: no service {name!r}")

    def stop_program(self, name: str) -> None:
        self.engine.run("service", "scale", f"{self.stack}_{name}=0")

    def start_program(self, name: str) -> None:
        wanted = self._spec(self.stack_file).get(name)
        if wanted is None:
            raise ServiceError(f"stack {self.stack}: no service {name!r}")
        self.engine.run("service", "scale", f"{self.stack}_{name}={wanted['deploy']['replicas']}")

    def restart_program(self, name: str) -> None:
        self.engine.run("service", "update", "--force", f"{self.stack}_{name}")
