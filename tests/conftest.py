"""Shared fixtures: grids under temporary homes on free ports."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from juno_dcs.tokens.fetch import TokenSource

CHECKOUT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
JUNO_DCS = str(BIN / "juno-dcs")


def _all_free(base: int, span: int = 100) -> bool:
    for port in range(base, base + span):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_base_port() -> int:
    """A base port whose 100 ports are all free, below the kernel's ephemeral range."""
    candidates = list(range(24000, 32000, 100))
    random.shuffle(candidates)
    for base in candidates:
        if _all_free(base):
            return base
    raise RuntimeError("no free block of 100 ports between 24000 and 32000")


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


_TOKEN_SOURCES: dict[tuple[Path, str], TokenSource] = {}
_ENVS: dict[tuple[Path, str], tuple[float, dict[str, str]]] = {}  # Grid.env's, until the time given


@dataclass
class Grid:
    home: Path
    base_port: int

    def juno_dcs(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([JUNO_DCS, *args, "--home", str(self.home)], check=check)

    def up(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.juno_dcs("up", "--base-port", str(self.base_port), *extra, check=check)

    def status(self) -> dict[str, object]:
        proc = self.juno_dcs("status", "--json", check=False)
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    def rse_dir(self, rse: str) -> Path:
        """Where the RSE's XRootD keeps its files (in the home, or in its service area)."""
        from juno_dcs.grid.home import GridHome

        return GridHome(self.home).rse_dir(rse)

    def state(self) -> dict[str, object]:
        return json.loads((self.home / "grid.json").read_text())  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def stopped(self, program: str) -> Iterator[None]:
        """`program` stopped by the grid's supervisor for the block, started again after it."""
        from juno_dcs.grid.home import GridHome
        from juno_dcs.grid.supervisor import Supervisor

        home = GridHome(self.home)
        sup = Supervisor(home, home.load_state())
        sup.stop_program(program)
        try:
            yield
        finally:
            sup.start_program(program)

    def token(self, account: str = "root", audience: str = "", scope: str = "") -> str:
        """A token of `account` from the grid's issuer, as `juno-dcs token` gets it (default: every audience of
        the grid's services, every scope of the account's role)."""
        from juno_dcs.grid import issuer
        from juno_dcs.grid.home import GridHome

        key = (self.home, account)
        if key not in _TOKEN_SOURCES:  # one per account and grid: tokens are reused until shortly before expiry
            home = GridHome(self.home)
            state = home.load_state()
            state.password(account)  # an unknown account: ConfigError naming the known ones
            _TOKEN_SOURCES[key] = TokenSource(issuer.credentials(issuer.layout(home, state), state, account))
        return _TOKEN_SOURCES[key].get(audience or " ".join(issuer.USER_AUDIENCES), scope).value

    def bearer(self, account: str = "root", audience: str = "", scope: str = "") -> dict[str, str]:
        """Request headers carrying `account`'s token."""
        return {"Authorization": f"Bearer {self.token(account, audience, scope)}"}

    def env(self, account: str = "root") -> dict[str, str]:
        """The environment `eval "$(juno-dcs env --account A)"` gives a shell. `juno-dcs env` runs once per
        account and grid every 15 minutes (the token it writes lasts an hour): the suite calls this often."""
        key = (self.home, account)
        held = _ENVS.get(key)
        if held is not None and held[0] > time.monotonic():
            return dict(held[1])
        exports = self.juno_dcs("env", "--account", account).stdout
        env = dict(os.environ)
        for line in exports.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
        env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
        _ENVS[key] = (time.monotonic() + 900, env)
        return dict(env)

    def rucio(self, *args: str, account: str = "root", check: bool = True,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """The stock rucio CLI as `account`."""
        proc = subprocess.run([str(BIN / "rucio"), *args], env=self.env(account), capture_output=True, text=True,
                              timeout=300, check=False, cwd=cwd)
        if check and proc.returncode != 0:
            raise AssertionError(f"rucio {args} failed with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc


def start_grid(tmp_root: Path, name: str) -> Grid:
    grid = Grid(home=tmp_root / name, base_port=free_base_port())
    grid.up()
    return grid


@pytest.fixture(scope="session")
def grids_root() -> Iterator[Path]:
    """The directory of the suite's grid homes: private (mode 0700, as a clone in root's home or `mktemp -d` is),
    so every grid of the suite runs with its service users' files in a service area (juno_dcs.grid.access)."""
    root = Path(tempfile.mkdtemp(prefix="juno-dcs-tests-"))
    root.chmod(0o700)
    yield root
    for link in root.glob("**/service-area"):  # a home a test left without `down --purge`: its area too
        if link.is_symlink():
            shutil.rmtree(link.resolve(), ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def grid_tmp(grids_root: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh directory under grids_root for one test's extra grids."""
    path = grids_root / request.node.name.replace("/", "_").replace("[", "_").replace("]", "_")
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def grid(grids_root: Path) -> Iterator[Grid]:
    """One running grid for the whole session, removed at the end. For development, JUNO_TEST_GRID_HOME names a
    running grid to use instead (it is brought up to date with `up` and left running)."""
    existing = os.environ.get("JUNO_TEST_GRID_HOME")
    if existing:
        home = Path(existing)
        g = Grid(home=home, base_port=int(json.loads((home / "grid.json").read_text())["base_port"]))
        g.up()
        yield g
        return
    g = start_grid(grids_root, "main")
    yield g
    g.juno_dcs("down", "--purge", check=False)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers that follow from what a test uses, so that `-m` selects by them: `grid` for every test that needs
    the session's grid (directly or through another fixture), `e2e` (and `grid`) for tests/e2e, `services` for
    the other integration tests, which start or reach real servers of their own. `slow` is set by each test."""
    for item in items:
        path = Path(str(item.path))
        if "e2e" in path.parts:
            item.add_marker(pytest.mark.e2e)
        if "grid" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.grid)
        elif "integration" in path.parts:
            item.add_marker(pytest.mark.services)
    items[:] = sorted(items, key=lambda item: item.get_closest_marker("last") is not None)  # stable
