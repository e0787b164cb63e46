"""The programs of a grid, as the supervisor runs them."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.settings import GridSettings

# The Rucio daemons that run continuously in every grid (the conveyor joins with the transfer service).
RUCIO_DAEMONS: tuple[str, ...] = (
    "judge-evaluator",
    "judge-repairer",
    "judge-cleaner",
    "judge-injector",
    "reaper",
    "undertaker",
    "abacus-account",
    "abacus-rse",
    "abacus-collection-replica",
    "transmogrifier",
    "hermes",
)

ACTIVEMQ_HOME = Path("/usr/share/activemq")
JAVA = Path("/usr/bin/java")


@dataclass(frozen=True)
class Program:
    name: str
    command: list[str]
    priority: int = 500
    environment: dict[str, str] = field(default_factory=dict)
    stopwaitsecs: int = 20
    startsecs: int = 3

    def section(self, home: GridHome) -> str:
        env = ",".join(f'{k}="{v}"' for k, v in sorted(self.environment.items()))
        lines = [
            f"[program:{self.name}]",
            f"command = {shlex.join(self.command)}",
            f"directory = {home.root}",
            f"priority = {self.priority}",
            "autostart = true",
            "autorestart = true",
            f"startsecs = {self.startsecs}",
            "startretries = 5",
            "stopsignal = TERM",
            f"stopwaitsecs = {self.stopwaitsecs}",
            "stopasgroup = true",
            "killasgroup = true",
            "redirect_stderr = true",
            f"stdout_logfile = {home.logs / (self.name + '.log')}",
            "stdout_logfile_maxbytes = 20MB",
            "stdout_logfile_backups = 2",
        ]
        if env:
            lines.append(f"environment = {env}")
        return "\n".join(lines) + "\n"


def venv_bin(name: str) -> str:
    """A console script of the environment this launcher runs in."""
    return str(Path(sys.executable).parent / name)


def grid_programs(home: GridHome, state: GridState, settings: GridSettings, config_digest: str) -> list[Program]:
    """Every program of the grid. `config_digest` changes whenever rucio.cfg does, which makes the
    supervisor restart the Rucio processes on `up` after a configuration change, and only then."""
    rucio_env = {"RUCIO_CONFIG": str(home.rucio_cfg), "JUNO_DCS_CONFIG_DIGEST": config_digest}
    programs = [
        Program(
            name="activemq",
            command=[
                str(JAVA), "-Xms64m", "-Xmx256m",
                f"-Dactivemq.home={ACTIVEMQ_HOME}", f"-Dactivemq.base={home.root / 'data' / 'activemq'}",
                f"-Dactivemq.conf={home.etc / 'activemq'}", f"-Dactivemq.data={home.root / 'data' / 'activemq'}",
                "-jar", str(ACTIVEMQ_HOME / "bin" / "activemq.jar"),
                "start", f"xbean:file:{home.etc / 'activemq' / 'activemq.xml'}",
            ],
            priority=100,
            environment={"JUNO_DCS_CONFIG_DIGEST": config_digest},
        ),
        Program(
            name="rucio-server",
            command=[
                venv_bin("gunicorn"),
                "--bind", f"127.0.0.1:{state.ports.rucio}",
                "--workers", str(settings.rucio_workers),
                "--timeout", "300",
                "--access-logfile", str(home.logs / "rucio-server-access.log"),
                "--error-logfile", "-",
                "rucio.web.rest.flaskapi.v1.main:application",
            ],
            priority=200,
            environment=rucio_env,
        ),
    ]
    for daemon in RUCIO_DAEMONS:
        programs.append(
            Program(
                name=f"rucio-{daemon}",
                command=[venv_bin(f"rucio-{daemon}"), "--sleep-time", str(settings.daemon_sleep)],
                priority=300,
                environment=rucio_env,
            )
        )
    return programs
