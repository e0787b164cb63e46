"""What the e2e stories use to act as a user would: a shell on the grid as one account (the environment of
`eval "$(juno-dcs env --account NAME)"`, the commands found on its PATH), polling with a deadline, and readers
for what the stock `rucio` CLI prints. Nothing here reaches into the project's Python packages."""

from __future__ import annotations

import json
import subprocess
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.conftest import Grid

T = TypeVar("T")


@dataclass
class Shell:
    """A terminal on the grid as `account`: `juno-dcs env --account ACCOUNT` exported, working in `cwd`."""

    grid: Grid
    account: str
    cwd: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.env = {**self.grid.env(self.account), **self.extra_env}

    @property
    def home(self) -> Path:
        return Path(self.env["JUNO_DCS_HOME"])

    def run(self, *cmd: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`cmd` as typed at the prompt (the program looked up on the shell's PATH, the venv's bin first)."""
        proc = subprocess.run(list(cmd), env=self.env, cwd=self.cwd, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"[{self.account}]$ {' '.join(cmd)}\nexit {proc.returncode}\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def out(self, *cmd: str, timeout: float = 300) -> str:
        return self.run(*cmd, timeout=timeout).stdout

    def json(self, *cmd: str, timeout: float = 300) -> Any:
        return json.loads(self.out(*cmd, timeout=timeout))


def wait_for(what: str, observe: Callable[[], T], done: Callable[[T], bool], timeout: float,
             every: float = 5.0) -> T:
    """Observe every `every` seconds until `done(observation)`; at the deadline fail with `what` and the last
    observation (or the last failed command). Only states are asserted, never how fast they came."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            seen: Any = observe()
        except AssertionError as failed:  # a command that failed once (a service restarting): look again
            seen = str(failed)
        else:
            if done(seen):
                return seen
        if time.monotonic() > deadline:
            shown = json.dumps(seen, indent=1, default=str) if not isinstance(seen, str) else seen
            raise AssertionError(f"{what}: not within {timeout:.0f} s; last seen:\n{shown[-6000:]}")
        time.sleep(every)


def table(text: str) -> list[dict[str, str]]:
    """The rows of a table the stock rucio CLI draws (`| A | B |` lines under a header), as dicts."""
    lines = [line for line in text.splitlines() if line.startswith("|") and not line.startswith("|-")]
    if not lines:
        return []
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
            for line in lines[1:]]


def replicas(shell: Shell, did: str) -> dict[str, dict[str, Any]]:
    """`rucio replica list file DID`: per file name, Rucio's adler32 and the RSEs of its available replicas."""
    found: dict[str, dict[str, Any]] = {}
    for row in table(shell.out("rucio", "replica", "list", "file", did)):
        rse, _, pfn = row["RSE: REPLICA"].partition(": ")
        entry = found.setdefault(row["NAME"], {"adler32": row["ADLER32"], "rses": {}})
        entry["rses"][rse] = pfn
    return found


def rules(shell: Shell, did: str) -> list[dict[str, str]]:
    """`rucio rule list --did DID --csv`: id, account, did, state (e.g. `OK[10/0/0]`), RSE expression, ..."""
    keys = ("id", "account", "did", "state", "rse_expression", "copies", "size", "expires", "created")
    lines = shell.out("rucio", "rule", "list", "--did", did, "--csv").splitlines()
    return [dict(zip(keys, line.split(","), strict=True)) for line in lines if line.strip()]


def all_ok(found: list[dict[str, str]], files: int) -> bool:
    """Every rule OK with a lock OK for each of `files` files (Rucio may call a rule OK before it evaluated files
    attached later)."""
    return bool(found) and all(r["state"] == f"OK[{files}/0/0]" for r in found)


def adler32(path: Path) -> str:
    return f"{zlib.adler32(path.read_bytes()) & 0xFFFFFFFF:08x}"


def downloaded(directory: Path) -> dict[str, Path]:
    """The files `rucio download --dir DIRECTORY` left there, by name."""
    return {p.name: p for p in directory.rglob("*") if p.is_file()}
