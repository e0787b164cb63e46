"""How the stack's runner (juno_dcs.swarm.runner) reads Docker's answers into program states: pure parsing of
`docker service ls` and `docker stack ps` lines as Docker 20.10 prints them. The stack itself is tests/swarm/."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from juno_dcs.grid.home import GridHome
from juno_dcs.swarm.runner import SwarmRunner


@dataclass
class Answers:
    """Docker's output for each command, by its first two words."""

    out: dict[tuple[str, str], str] = field(default_factory=dict)
    host: str = "unix:///nowhere"

    def run(self, *args: str, **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(list(args), 0, self.out.get((args[0], args[1]), ""), "")


def lines(*rows: dict[str, str]) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def runner(tmp_path: Path, services: str, tasks: str) -> SwarmRunner:
    home = GridHome(tmp_path / "grid")
    state = home.new_state(25000, "postgresql://postgres@127.0.0.1:5432/postgres")
    engine = Answers({("service", "ls"): services, ("stack", "ps"): tasks})
    return SwarmRunner(home, state, engine)  # type: ignore[arg-type]


def test_a_task_told_to_shut_down_no_longer_counts_as_running(tmp_path: Path) -> None:
    stack = f"juno-{GridHome(tmp_path / 'grid').tag}"
    services = lines({"Name": f"{stack}_xrootd-CNAF_DISK", "Replicas": "1/1"},
                     {"Name": f"{stack}_rucio-server", "Replicas": "2/2"})
    tasks = lines(
        # CNAF's node drained: the old task still running while its container stops, the new one has no node
        {"Name": f"{stack}_xrootd-CNAF_DISK.1", "DesiredState": "Running", "CurrentState": "Pending 2 seconds ago"},
        {"Name": f" \\_ {stack}_xrootd-CNAF_DISK.1", "DesiredState": "Shutdown",
         "CurrentState": "Running 5 minutes ago"},
        {"Name": f"{stack}_rucio-server.1", "DesiredState": "Running", "CurrentState": "Running 5 minutes ago"},
        {"Name": f"{stack}_rucio-server.2", "DesiredState": "Running", "CurrentState": "Running 4 minutes ago"},
    )
    states = {p.name: (p.state, p.description) for p in runner(tmp_path, services, tasks).processes()}
    assert states == {"xrootd-CNAF_DISK": ("STARTING", "0/1 replicas"), "rucio-server": ("RUNNING", "2/2 replicas")}


def test_a_service_whose_tasks_keep_failing_is_fatal_and_one_scaled_to_0_stopped(tmp_path: Path) -> None:
    stack = f"juno-{GridHome(tmp_path / 'grid').tag}"
    services = lines({"Name": f"{stack}_nginx", "Replicas": "0/1"}, {"Name": f"{stack}_probes", "Replicas": "0/0"})
    failed = [{"Name": f" \\_ {stack}_nginx.1", "DesiredState": "Shutdown", "CurrentState": "Failed 3 seconds ago",
               "Error": "task: non-zero exit (1)"} for _ in range(10)]
    states = {p.name: p for p in runner(tmp_path, services, lines(*failed)).processes()}
    assert states["nginx"].state == "FATAL"
    assert "10 failed tasks, the last: task: non-zero exit (1)" in states["nginx"].description
    assert states["probes"].state == "STOPPED"
