"""Real pieces for the conditions tests: a MariaDB database with its two accounts (unique names, dropped at the
end), the conditions service (uvicorn, 2 workers) and one Squid per data centre, each a subprocess on a free
127.0.0.1 port under a temporary directory that Squid's user can reach."""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from juno_dcs.conditions import db, logic
from juno_dcs.conditions.models import RunRange
from juno_dcs.grid import conditions as grid

BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("JUNO_CONDITIONS_TEST_ADMIN_URL", "mysql+pymysql://root@127.0.0.1:3306/")
OPEN_MAX_AGE = 2  # seconds: the tests' bound for an open tag's change to reach the jobs


def mariadb_answers() -> bool:
    engine = sa.create_engine(ADMIN_URL, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()




def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} not ready after {timeout} s")


@dataclass
class CondDb:
    name: str
    reader_user: str
    writer_user: str
    reader_url: str
    writer_url: str

    def counts(self) -> dict[str, int]:
        engine = sa.create_engine(self.writer_url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return db.counts(conn)
        finally:
            engine.dispose()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN / "juno-dcs"), "conditions", "--db", self.writer_url, *args],
                              capture_output=True, text=True, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"juno-dcs conditions {args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def admin(self, *statements: str, **params: str) -> None:
        engine = sa.create_engine(ADMIN_URL, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(sa.text(statement), params)
        finally:
            engine.dispose()

    def cut_reader_off(self) -> None:
        """The database 'goes down' for the service: its account is locked and its connections killed."""
        self.admin("ALTER USER :u@'127.0.0.1' ACCOUNT LOCK", "ALTER USER :u@'localhost' ACCOUNT LOCK",
                   u=self.reader_user)
        engine = sa.create_engine(ADMIN_URL, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            ids = conn.execute(sa.text("SELECT id FROM information_schema.processlist WHERE user = :u"),
                               {"u": self.reader_user}).scalars().all()
            for pid in ids:
                conn.execute(sa.text(f"KILL CONNECTION {int(pid)}"))
        engine.dispose()

    def reconnect_reader(self) -> None:
        self.admin("ALTER USER :u@'127.0.0.1' ACCOUNT UNLOCK", "ALTER USER :u@'localhost' ACCOUNT UNLOCK",
                   u=self.reader_user)


@dataclass
class Process:
    command: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(self.command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@dataclass
class Service:
    root: Path
    reader_url: str
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.root / "conditions.yaml"
        config.write_text(grid.render_service_config(self.reader_url, open_max_age=OPEN_MAX_AGE))
        config.chmod(0o600)
        self.process = Process(grid.service_command(config, self.port, access_log=True), self.root / "service.log")
        self.process.start()
        wait_for("conditions service", lambda: requests.get(f"{self.url}/health", timeout=2).status_code == 200)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def requests_for(self, path: str) -> int:
        """How many GETs of `path` reached the service (its access log, where uvicorn writes ',' as %2C)."""
        text = (self.root / "service.log").read_text(errors="replace")
        return len(re.findall(rf'"GET {re.escape(urllib.parse.quote(path))} HTTP/1.1"', text))


@dataclass
class Squid:
    home: grid.SquidHome
    site: str
    origin_port: int
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.home.root.mkdir(parents=True, exist_ok=True)
        self.home.conf.write_text(grid.render_squid_config(self.site, self.port, self.origin_port, self.home.root,
                                                           cache_mem_mb=32, cache_dir_mb=64))
        grid.prepare_squid_home(self.home)
        grid.init_squid(self.home)
        self.process = Process(grid.squid_command(self.home.conf), self.home.root / "squid.out")
        self.process.start()
        wait_for(f"Squid {self.site}", lambda: requests.get(f"{self.url}/health", timeout=2).status_code < 500)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        deadline = time.monotonic() + 10
        while self.home.pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def log(self) -> list[str]:
        return self.home.access_log.read_text().splitlines() if self.home.access_log.exists() else []

    def results_for(self, path: str, settle: float = 2.0) -> list[str]:
        """Squid's result codes (TCP_MISS, TCP_MEM_HIT, TCP_REFRESH_UNMODIFIED, ...) for `path`, in order. Squid
        writes its access log a moment after answering: read until the lines stop changing for `settle` s."""
        def read() -> list[str]:
            return [line.split()[3].split("/")[0] for line in self.log() if f":{self.port}{path} " in line]

        found, since = read(), time.monotonic()
        while time.monotonic() - since < settle:
            time.sleep(0.2)
            again = read()
            if again != found:
                found, since = again, time.monotonic()
        return found


@dataclass
class Stack:
    db: CondDb
    service: Service
    squids: dict[str, Squid]

    def proxies(self, *sites: str) -> list[str]:
        return [self.squids[s].url for s in (sites or tuple(self.squids))]


def make_db(admin_url: str = ADMIN_URL) -> CondDb:
    """A conditions database with its two accounts, made through `admin_url` (default: the tests' MariaDB)."""
    suffix = secrets.token_hex(4)
    name, reader, writer = f"juno_cond_{suffix}", f"jc_{suffix}_r", f"jc_{suffix}_w"
    reader_pw, writer_pw = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    grid.ensure_database(admin_url, name, reader, reader_pw, writer, writer_pw)
    return CondDb(name, reader, writer, grid.database_url(admin_url, name, reader, reader_pw),
                  grid.database_url(admin_url, name, writer, writer_pw))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # both come with `make setup` (scripts/setup-system.sh): missing, they are a broken setup, not a reason to skip
    if shutil.which("squid") is None and not Path("/usr/sbin/squid").exists():
        pytest.fail("squid is not installed: run `make setup` (scripts/setup-system.sh installs it)")
    if not mariadb_answers():
        pytest.fail(f"no MariaDB answers at {ADMIN_URL}: run `make setup` (scripts/setup-system.sh installs and "
                    "starts it when none answers), or point JUNO_CONDITIONS_TEST_ADMIN_URL at one")
    root = Path(tempfile.mkdtemp(prefix="juno-conditions-"))
    root.chmod(0o755)
    database = make_db()
    service = Service(root, database.reader_url)
    squids = {site: Squid(grid.SquidHome(root / "squid" / site), site, service.port) for site in ("IHEP", "CNAF")}
    try:
        service.start()
        for squid in squids.values():
            squid.start()
        yield Stack(database, service, squids)
    finally:
        timer = time.monotonic()
        for process in [s.process for s in squids.values()] + [service.process]:
            if process is not None:
                process.terminate()  # all at once: each takes about a second
        for squid in squids.values():
            squid.stop()
        service.stop()
        print(f"stack stopped in {time.monotonic() - timer:.1f} s")
        grid.drop_database(ADMIN_URL, database.name, database.reader_user, database.writer_user)
        shutil.rmtree(root, ignore_errors=True)


# --- condition data to put in
def pmt_gains(channels: int = 17612, seed: int | None = None) -> bytes:
    rng = random.Random(seed)  # noqa: S311
    return json.dumps({"channel": list(range(channels)), "gain": [round(rng.gauss(1.0, 0.05), 6)
                                                                 for _ in range(channels)],
                       "sigma": [round(rng.uniform(0.05, 0.2), 6) for _ in range(channels)]}).encode()


def timing_offsets(channels: int = 17612, seed: int | None = None) -> bytes:
    rng = random.Random(seed)  # noqa: S311
    return json.dumps({"channel": list(range(channels)),
                       "offset_ns": [round(rng.gauss(0, 2), 4) for _ in range(channels)]}).encode()


def energy_scale(value: float | None = None) -> bytes:
    return json.dumps({"pe_per_mev": value if value is not None else round(random.uniform(1500, 1700), 6)  # noqa: S311
                       ,
                       "nonlinearity": [1.0, 0.99, 0.98]}).encode()


def build_tag(database: CondDb, tmp: Path, *, lock: bool = True, channels: int = 2000,
              with_cli: bool = False) -> tuple[str, dict[str, bytes]]:
    """A tag with three folders for runs 1000-1999; (name, {folder: bytes}). With the admin commands (one
    process each, ~0.8 s) or with the functions they call, in this process, as the writer account."""
    tag = f"T{secrets.token_hex(4)}"
    payloads = {"pmt_gains": pmt_gains(channels), "timing_offsets": timing_offsets(channels),
                "energy_scale": energy_scale()}
    if with_cli:
        database.cli("create-tag", tag, "--description", "integration test")
        for folder, data in payloads.items():
            path = tmp / f"{tag}-{folder}.json"
            path.write_bytes(data)
            database.cli("add", tag, folder, "1000-1999", str(path), "--type", folder)
        if lock:
            database.cli("lock", tag)
        return tag, payloads
    engine = sa.create_engine(database.writer_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            logic.create_tag(conn, tag, "integration test")
            for folder, data in payloads.items():
                info = logic.folder_for(conn, folder, folder)
                logic.add_payload(conn, tag, info, RunRange(first=1000, last=1999), data)
            if lock:
                logic.lock_tag(conn, tag)
    finally:
        engine.dispose()
    return tag, payloads
