"""The grid's condition data: a MariaDB database per grid home, the read-only conditions service on B+40 and one
Squid per data centre (the topology's tier-0 and tier-1 sites, in its order) on B+41.. in front of it.

    home/etc/conditions.yaml          the service: the read-only account's URL, cache lifetimes (0600)
    home/etc/conditions-admin.yaml    the writing account's URL, for `juno-dcs conditions` (0600)
    SERVICE_ROOT/squid/<SITE>/        squid.conf, cache/, logs/access.log and cache.log, squid.pid
                                      (the home itself, or its service area: juno_dcs.grid.access)

The MariaDB database is `<db_name>_cond` with the accounts `<db_name>_r` (SELECT) and `<db_name>_w` (SELECT,
INSERT, UPDATE), made idempotently through `mysql_admin_url` at every `up` and dropped by `down --purge`.

Ports (offsets from the grid's base port B, the slots 40..49 reserved in grid/ports.py):

    B+40         the conditions service (uvicorn)              service_port(base)
    B+41..B+49   one Squid per data centre, in `sites` order   squid_ports(base, sites) -> {site: port}

At `up`, in this order (every step is idempotent):

 1. ensure_database(admin_url, db_name, reader_user, reader_pw, writer_user, writer_pw) -> bool
      creates the MariaDB database, the read-only account (SELECT only; the service also makes its sessions
      READ ONLY), the writer account (SELECT, INSERT, UPDATE: the admin commands), the tables; passwords
      are reset to the given ones. True when the database was new. drop_database(...) undoes it (--purge).
      database_url(admin_url, db_name, user, password) gives either account's SQLAlchemy URL.
 2. Write, mode 0600:
      home/etc/conditions.yaml        = render_service_config(reader_url, open_max_age=30)
      home/etc/conditions-admin.yaml  = render_admin_config(writer_url)   (`juno-dcs conditions` finds it)
 3. For each site: squid = SquidHome(home / "squid" / site)
      squid.conf written with render_squid_config(site, port, service_port(base), squid.root)
      prepare_squid_home(squid)  (directories; as root they belong to Squid's user `proxy`, so the grid's
                                 home must be traversable by it, like the XRootD data for `xrootd`)
      init_squid(squid)          (`squid -N -z -f conf` when the cache dir is not initialised yet)
 4. Supervisor programs (foreground, SIGTERM stops them; Squid needs ~1 s):
      "conditions":         service_command(home/etc/conditions.yaml, service_port(base), workers=2)
      "squid-<site>":       squid_command(squid.conf)
    Health: GET service_url(base) + "/health" (200 when the database answers) and the same through each Squid.

Jobs at a site use ConditionsClient(proxies=[that site's Squid, then the others], servers=[service URL]).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import string
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
import sqlalchemy as sa
import yaml

from juno_dcs import packaged
from juno_dcs.conditions.config import ServiceConfig
from juno_dcs.errors import ConfigError, ServiceError
from juno_dcs.grid.health import Health
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.migrations.runner import upgrade_conditions
from juno_dcs.settings import GridSettings
from juno_dcs.topology import Topology

SERVICE_OFFSET = 40
FIRST_SQUID_OFFSET = 41
MAX_SQUIDS = 9
SQUID_USER = "proxy"  # Debian's squid drops root privileges to this user
DEFAULT_SITES: tuple[str, ...] = ("IHEP", "CNAF", "JINR", "IN2P3", "MSU")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,32}$")


def service_port(base: int) -> int:
    return base + SERVICE_OFFSET


def service_url(base: int) -> str:
    return f"http://127.0.0.1:{service_port(base)}"


def squid_ports(base: int, sites: Sequence[str] = DEFAULT_SITES) -> dict[str, int]:
    if len(sites) > MAX_SQUIDS:
        raise ConfigError(f"{len(sites)} Squids: the grid's port plan has room for {MAX_SQUIDS} (B+41..B+49)")
    return {site: base + FIRST_SQUID_OFFSET + i for i, site in enumerate(sites)}


# --- the service
def render_service_config(reader_url: str, *, open_max_age: int = 30, locked_max_age: int = 30 * 86400,
                          pool_size: int = 8) -> str:
    """The service's YAML configuration (validated here, so a bad value fails at `up`)."""
    config = ServiceConfig(database_url=reader_url, open_max_age=open_max_age, locked_max_age=locked_max_age,
                           pool_size=pool_size)
    return yaml.safe_dump(config.model_dump(), sort_keys=False)


def render_admin_config(writer_url: str) -> str:
    return yaml.safe_dump({"database_url": writer_url})


def service_command(config: Path, port: int, *, workers: int = 2, access_log: bool = False,
                    python: str = sys.executable) -> list[str]:
    command = [python, "-m", "juno_dcs.conditions", "serve", "--config", str(config), "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers)]
    return [*command, "--access-log"] if access_log else command


# --- Squid
@dataclass(frozen=True)
class SquidHome:
    """One Squid's files: config, cache, logs and pid file under its own directory."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "squid.conf"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def access_log(self) -> Path:
        return self.logs / "access.log"

    @property
    def cache_log(self) -> Path:
        return self.logs / "cache.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "squid.pid"


def render_squid_config(site: str, port: int, origin_port: int, home: Path, *, cache_mem_mb: int = 64,
                        cache_dir_mb: int = 256, template: Path | None = None) -> str:
    """squid.conf for the Squid of `site` on 127.0.0.1:`port` in front of the service on `origin_port`,
    keeping everything under `home`; `template` defaults to the package's squid.conf."""
    if template is None:
        template = packaged.data_file("templates/squid.conf")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", site):
        raise ConfigError(f"Squid site {site!r}: letters, digits, '_' and '-' only")
    paths = SquidHome(home)
    values = {
        "site": site, "port": port, "origin_port": origin_port, "defaultsite": f"conditions-{site.lower()}",
        "cache_mem_mb": cache_mem_mb, "cache_dir_mb": cache_dir_mb, "cache_dir": paths.cache_dir,
        "pid_file": paths.pid_file, "access_log": paths.access_log, "cache_log": paths.cache_log, "home": home,
    }
    try:
        return string.Template(template.read_text()).substitute({k: str(v) for k, v in values.items()})
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{template}: no value for {exc}") from exc
    except FileNotFoundError as exc:
        raise ConfigError(f"{template}: template missing") from exc


def prepare_squid_home(squid: SquidHome) -> None:
    """Create the Squid's directories; as root, hand them to Squid's user (it drops privileges to it)."""
    for path in (squid.root, squid.cache_dir, squid.logs):
        path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(SQUID_USER)
    except KeyError as exc:
        raise ConfigError(f"user {SQUID_USER!r} missing: install Debian's squid (scripts/setup-system.sh)") from exc
    for path in (squid.root, squid.cache_dir, squid.logs, *squid.cache_dir.rglob("*"), *squid.logs.rglob("*")):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in squid.root.parents:  # Squid's user must reach its directory
        if parent.stat().st_mode & 0o001 == 0:
            raise ConfigError(f"{parent}: not traversable by the {SQUID_USER} user that Squid runs as "
                              f"(chmod o+x it or use another home)")
        if parent == Path("/"):
            break


def squid_binary() -> str:
    found = shutil.which("squid") or ("/usr/sbin/squid" if Path("/usr/sbin/squid").exists() else None)
    if found is None:
        raise ConfigError("squid is not installed: run scripts/setup-system.sh (Debian package squid)")
    return found


def squid_command(conf: Path) -> list[str]:
    """Squid in the foreground (no daemon, no kid processes), for the supervisor."""
    return [squid_binary(), "-N", "-f", str(conf)]


def init_squid(squid: SquidHome, timeout: float = 60) -> bool:
    """`squid -N -z` (create the cache directories) unless done; True when it ran."""
    if (squid.cache_dir / "00").is_dir():
        return False
    proc = subprocess.run([squid_binary(), "-N", "-z", "-f", str(squid.conf)], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0 or not (squid.cache_dir / "00").is_dir():
        raise ServiceError(f"squid -z -f {squid.conf} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return True


# --- the database
def _identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ConfigError(f"{what} {value!r}: only letters, digits and '_' (at most 32)")
    return value


def database_url(admin_url: str, db_name: str, user: str, password: str) -> str:
    """The SQLAlchemy URL of `user` on the conditions database, at the admin URL's host and port."""
    admin = sa.engine.make_url(admin_url)
    url = sa.engine.URL.create("mysql+pymysql", username=user, password=password, host=admin.host or "127.0.0.1",
                               port=admin.port or 3306, database=db_name, query={"charset": "utf8mb4"})
    return url.render_as_string(hide_password=False)


def _admin_engine(admin_url: str, database: str | None = None) -> sa.Engine:
    url = sa.engine.make_url(admin_url)
    if database is not None:
        url = url.set(database=database)
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})


def ensure_database(admin_url: str, db_name: str, reader_user: str, reader_pw: str, writer_user: str,
                    writer_pw: str) -> bool:
    """Create (or bring up to date) the conditions database, its two accounts and its tables through the
    MariaDB admin account `admin_url` (e.g. mysql+pymysql://root@127.0.0.1:3306/). True when it was new."""
    _identifier(db_name, "database")
    _identifier(reader_user, "reader account")
    _identifier(writer_user, "writer account")
    engine = _admin_engine(admin_url)
    try:
        with engine.begin() as conn:
            new = conn.execute(sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :n"),
                               {"n": db_name}).first() is None
            conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS `{db_name}` CHARACTER SET utf8mb4"))
            for user, password, rights in ((reader_user, reader_pw, "SELECT"),
                                           (writer_user, writer_pw, "SELECT, INSERT, UPDATE")):
                for host in ("127.0.0.1", "localhost"):
                    account = {"u": user, "h": host, "p": password}
                    conn.execute(sa.text("CREATE USER IF NOT EXISTS :u@:h IDENTIFIED BY :p"), account)
                    conn.execute(sa.text("ALTER USER :u@:h IDENTIFIED BY :p"), account)
                    conn.execute(sa.text(f"GRANT {rights} ON `{db_name}`.* TO :u@:h"), account)
        tables = _admin_engine(admin_url, db_name)
        try:
            upgrade_conditions(tables)  # the versions: juno_dcs/migrations/conditions
        finally:
            tables.dispose()
    except sa.exc.OperationalError as exc:
        raise ServiceError(f"MariaDB at {sa.engine.make_url(admin_url).render_as_string(hide_password=True)}: "
                           f"{exc.orig}") from exc
    finally:
        engine.dispose()
    return new


def drop_database(admin_url: str, db_name: str, reader_user: str, writer_user: str) -> None:
    """Remove the conditions database and both accounts (`down --purge`)."""
    _identifier(db_name, "database")
    engine = _admin_engine(admin_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{_identifier(db_name, 'database')}`"))
            for user in (_identifier(reader_user, "reader account"), _identifier(writer_user, "writer account")):
                for host in ("127.0.0.1", "localhost"):
                    conn.execute(sa.text("DROP USER IF EXISTS :u@:h"), {"u": user, "h": host})
    finally:
        engine.dispose()


def data_centres(topo: Topology) -> list[str]:
    """The sites that get a Squid: tier 0 and tier 1, in the topology's order (IHEP first)."""
    return [name for name, site in topo.sites.items() if site.tier <= 1]


@dataclass(frozen=True)
class ConditionsLayout:
    service_port: int
    squids: dict[str, int]  # site -> port
    homes: dict[str, SquidHome]
    service_config: Path
    admin_config: Path

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    def squid_url(self, site: str) -> str:
        return f"http://127.0.0.1:{self.squids[site]}"


def layout(home: GridHome, state: GridState, topo: Topology) -> ConditionsLayout:
    squids = squid_ports(state.base_port, data_centres(topo))
    return ConditionsLayout(
        service_port=state.ports.port("conditions"),
        squids=squids,
        homes={site: SquidHome(home.squid_root / site) for site in squids},
        service_config=home.etc / "conditions.yaml",
        admin_config=home.etc / "conditions-admin.yaml",
    )


def running_layout(home: GridHome, state: GridState) -> ConditionsLayout:
    """The layout as the home's Squid configurations record it (for `status`, without the topology)."""
    squids: dict[str, int] = {}
    homes: dict[str, SquidHome] = {}
    root = home.squid_root
    for conf in sorted(root.glob("*/squid.conf")) if root.is_dir() else []:
        for line in conf.read_text().splitlines():
            if line.startswith("http_port 127.0.0.1:"):
                site = conf.parent.name
                squids[site] = int(line.split()[1].rpartition(":")[2])
                homes[site] = SquidHome(conf.parent)
                break
    return ConditionsLayout(service_port=state.ports.port("conditions"), squids=squids, homes=homes,
                            service_config=home.etc / "conditions.yaml",
                            admin_config=home.etc / "conditions-admin.yaml")


def admin_url(state: GridState, settings: GridSettings) -> str:
    """The MariaDB admin account of this grid: its own stack's server (swarm/databases.py) or the settings'."""
    return state.mysql_admin_url or settings.mysql_admin_url


def render_configs(where: ConditionsLayout, state: GridState, settings: GridSettings) -> dict[Path, str]:
    """Every conditions config file of the grid, by path (secrets inside: written 0600)."""
    reader = database_url(admin_url(state, settings), state.conditions_db, state.conditions_reader,
                               state.conditions_reader_password)
    writer = database_url(admin_url(state, settings), state.conditions_db, state.conditions_writer,
                               state.conditions_writer_password)
    files = {
        where.service_config: render_service_config(reader, open_max_age=settings.conditions_open_max_age),
        where.admin_config: render_admin_config(writer),
    }
    for site, port in where.squids.items():
        squid = where.homes[site]
        files[squid.conf] = render_squid_config(site, port, where.service_port, squid.root,
                                               template=settings.template("squid.conf"))
    return files


def prepare(where: ConditionsLayout, state: GridState, settings: GridSettings) -> list[str]:
    """Before the programs start: the database and its accounts, the Squids' directories and caches."""
    done = []
    if ensure_database(admin_url(state, settings), state.conditions_db, state.conditions_reader,
                            state.conditions_reader_password, state.conditions_writer,
                            state.conditions_writer_password):
        done.append(f"created the conditions database {state.conditions_db} on MariaDB")
    for site, squid in where.homes.items():
        prepare_squid_home(squid)
        if init_squid(squid):
            done.append(f"initialised the Squid cache of {site}")
    return done


def purge(settings: GridSettings, state: GridState) -> None:
    drop_database(admin_url(state, settings), state.conditions_db, state.conditions_reader,
                       state.conditions_writer)


def _problem(url: str, timeout: float) -> str | None:
    """What is wrong with `url`/health (None: it answers 200)."""
    try:
        answer = requests.get(f"{url}/health", timeout=timeout)
    except requests.RequestException as exc:
        return exc.__class__.__name__
    return None if answer.status_code == 200 else f"HTTP {answer.status_code}"


def check_squid(where: ConditionsLayout, site: str, timeout: float = 3.0) -> Health:
    """The conditions service answers /health through the Squid of `site`."""
    problem = _problem(where.squid_url(site), timeout)
    if problem is None:
        return Health(True, "the service answers through it")
    return Health(False, problem if problem.startswith("HTTP") else f"no answer: {problem}")


def check(where: ConditionsLayout, timeout: float = 3.0) -> Health:
    """The service answers /health (it reaches its database), directly and through every Squid."""
    targets = {"service": where.service_url, **{f"squid {s}": where.squid_url(s) for s in where.squids}}
    bad = [f"{name}: {problem}" for name, url in targets.items() if (problem := _problem(url, timeout))]
    if bad:
        return Health(False, "; ".join(bad))
    return Health(True, f"service and {len(where.squids)} Squids ({', '.join(where.squids)}) answer")
