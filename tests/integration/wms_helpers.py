"""Helpers for the dispatcher's integration tests: a throwaway PostgreSQL database, `juno-wms serve` processes
on free ports, and the agent driven in-process through `run_once`."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import requests
import yaml

from juno_dcs.migrations.runner import upgrade_postgres
from juno_dcs.packaged import data_file
from juno_dcs.tokens.config import ClientAuth
from juno_dcs.wms import db
from juno_dcs.wms.agent import Agent
from juno_dcs.wms.brokerage import ReplicaLocator
from juno_dcs.wms.client import WmsClient
from juno_dcs.wms.config import WmsConfig, load_config
from juno_dcs.wms.credentials import AUDIENCE, PILOT_SCOPES, client_token
from juno_dcs.wms.service import context

CHECKOUT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("JUNO_WMS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def throwaway_database(prefix: str = "wms_test", migrated: bool = True) -> Iterator[str]:
    """A new database `<prefix>_<random>` with the project's schemas at head (`juno-dcs up` does the same; empty
    with migrated=False), dropped (with its connections) at the end; yields its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        if migrated:
            upgrade_postgres(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_config(directory: Path, database_url: str, **overrides: object) -> Path:
    """A dispatcher's configuration; token checks off unless `auth` is given (grid_auth() for the session grid's
    issuer)."""
    data: dict[str, object] = {"database_url": database_url, "topology": str(data_file("topology.yaml")),
                               "retry_rules": str(data_file("wms-retry.yaml")), "auth": None, **overrides}
    path = directory / f"wms-{secrets.token_hex(3)}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _issuer(grid_home: Path) -> Any:
    from juno_dcs.grid import issuer
    from juno_dcs.grid.home import GridHome

    home = GridHome(grid_home)
    return issuer.layout(home, home.load_state())


def grid_auth(grid_home: Path) -> dict[str, Any]:
    """The `auth` section of a dispatcher that checks tokens of the grid's issuer, as the grid's own does."""
    from juno_dcs.grid import issuer

    return issuer.service_auth(_issuer(grid_home), issuer.WMS_AUDIENCE).model_dump(mode="json")


def client_auth(grid_home: Path, client_id: str) -> ClientAuth:
    """A program's client of the grid's issuer (its secret in the grid's 0600 file)."""
    from juno_dcs.grid import issuer

    return issuer.client_auth(_issuer(grid_home), client_id)


def service_token(grid_home: Path, client_id: str, scope: str) -> str:
    """A token of a service client of the grid's issuer (pilot, dashboard, probes) for the dispatcher."""
    return client_token(client_auth(grid_home, client_id), AUDIENCE, scope)()


def pilot_client(url: str, grid_home: Path) -> WmsClient:
    """A client with the pilots' token, as the factory gives it to every pilot."""
    return WmsClient(url, token=client_token(client_auth(grid_home, "pilot"), AUDIENCE, PILOT_SCOPES))


def user_client(url: str, grid_home: Path, account: str, timeout: float = 30.0) -> WmsClient:
    """A client with `account`'s own token (what `juno-dcs env --account` writes to BEARER_TOKEN_FILE)."""
    return WmsClient(url, timeout=timeout, token=client_token(client_auth(grid_home, account)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def truncate(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE wms.tasks, wms.jobs, wms.job_history, wms.pilots RESTART IDENTITY CASCADE")


class Server:
    """One `juno-wms serve` process (its own uvicorn workers) on a free port."""

    def __init__(self, config: Path, workers: int = 1, port: int | None = None) -> None:
        self.config, self.workers = config, workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = config.with_suffix(f".{self.port}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Server:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([str(BIN / "juno-wms"), "serve", "--config", str(self.config),
                                          "--port", str(self.port), "--workers", str(self.workers)],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"juno-wms serve exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                if requests.get(self.url + "/v1/health", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"juno-wms serve not ready in {timeout} s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def agent_for(config_path: Path, locator: ReplicaLocator | None = None) -> Iterator[Agent]:
    """The agent of that configuration, in this process; drive it with `run_once()`."""
    config: WmsConfig = load_config(config_path)
    pool = db.open_pool(config.database_url, size=2)
    try:
        yield Agent(pool, context(config), locator, bulk=config.agent_bulk)
    finally:
        pool.close()
