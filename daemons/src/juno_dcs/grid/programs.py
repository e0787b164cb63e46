"""The programs of a grid, as the supervisor runs them."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from juno_dcs.grid import cache, conditions, kafka, pki, storage
from juno_dcs.grid.assets import kafka_dir
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.wms import WMS_SERVER_POOL, WmsLayout
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
# Daemons that sleep longer than the others: abacus-collection-replica recounts a dataset's replicas at an RSE
# (a join over all its files) for every batch of changes it finds: on a 1,000-file rule its PostgreSQL backend
# spent 22 s of CPU with a 5 s cycle, 11 s with 30 s. Nothing in the grid waits on those counts (`raw status`
# and the probes count file replicas, deep=True), so it runs every 30 s.
# The transmogrifier (subscriptions) takes up to 1,000 new DIDs per cycle, subscriptions or none, and spent 1.5 s
# on each 1,000 (its log) with a backlog: with a 5 s cycle it and its PostgreSQL backend held 45 % of a core through
# a bulk registration, for at most 200 DIDs/s. 30 s still takes 33 new DIDs/s (JUNO makes under one raw file a
# second); Rucio's own default is 60 s.
DAEMON_SLEEP: dict[str, int] = {"abacus-collection-replica": 30, "transmogrifier": 30}


@dataclass(frozen=True)
class RucioPool:
    """SQLAlchemy's connection pool of one Rucio process (rucio.cfg, [database] pool_size and max_overflow)."""

    size: int
    overflow: int

    @property
    def cap(self) -> int:
        return self.size + self.overflow

    def values(self, role: str) -> dict[str, object]:
        """The placeholders of etc/templates/rucio.cfg that differ between the server's file and the daemons'."""
        return {"pool_size": self.size, "max_overflow": self.overflow, "rucio_role": role}


# Rucio's default pool (5 + 10 overflow per process) would let the grid's 17 Rucio processes open 255
# connections. A gunicorn sync worker serves one request at a time and a daemon runs one thread (the
# conveyor-receiver adds its STOMP listener); a session nested in another (a heartbeat, a token check) is the
# most either holds at once, so three per process leave room and bound the grid (docs/admin.md).
RUCIO_SERVER_POOL = RucioPool(size=2, overflow=1)
RUCIO_DAEMON_POOL = RucioPool(size=1, overflow=2)
# The JUNO services' own pools to the grid's database, per process (their configs, written by `up`).
FTS_SERVER_WORKERS = 2  # uvicorn workers of the transfer service's REST API
FTS_SERVER_POOL = 4  # per worker
FTS_WORKER_POOL = 8  # the transfer worker's copy threads share it; a copy holds no connection while it runs
WMS_SERVER_WORKERS = 2
# The conveyor: submits transfer requests to the transfer service (one file per job, as Rucio does by
# default, so that each completion message carries a final job state), learns of their ends from the
# service's completion messages (receiver) or, failing that, by polling (poller), registers the results.
CONVEYOR_DAEMONS: dict[str, list[str]] = {
    "conveyor-submitter": ["--sleep-time", "2", "--bulk", "1000", "--group-bulk", "1"],
    "conveyor-receiver": [],
    # a backstop: the receiver learns of almost every end from the completion messages
    "conveyor-poller": ["--sleep-time", "10", "--older-than", "60", "--fts-bulk", "200", "--db-bulk", "1000"],
    "conveyor-finisher": ["--sleep-time", "2", "--bulk", "1000", "--db-bulk", "1000"],
}

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
    startretries: int = 5
    directory: Path | None = None  # default: the grid's home
    pg_connections: int = 0  # the most connections to the grid's PostgreSQL it may hold at once (grid/budget.py)

    def section(self, home: GridHome) -> str:
        env = ",".join(f'{k}="{v}"' for k, v in sorted(self.environment.items()))
        lines = [
            f"[program:{self.name}]",
            f"command = {shlex.join(self.command)}",
            f"directory = {self.directory or home.root}",
            f"priority = {self.priority}",
            "autostart = true",
            "autorestart = true",
            f"startsecs = {self.startsecs}",
            f"startretries = {self.startretries}",
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


def supervisor_url(state: GridState) -> str:
    """The supervisor's XML-RPC URL with its credentials: for the watchdog's environment and the `programs`
    probe's 0600 file, never for a command line or a log."""
    return f"http://juno:{state.supervisor_password}@127.0.0.1:{state.ports.supervisor}/RPC2"


def watchdog_section(home: GridHome, state: GridState) -> str:
    """The supervisor's event listener that starts FATAL programs again with a capped backoff
    (juno_dcs.grid.watchdog). Its XML-RPC URL carries the supervisor's password: it goes in the environment of
    the section (supervisord.conf is mode 600), not on the command line."""
    url = supervisor_url(state)
    return "\n".join([
        "[eventlistener:watchdog]",
        f"command = {shlex.join([sys.executable, '-m', 'juno_dcs.grid.watchdog'])}",
        f"directory = {home.root}",
        "events = PROCESS_STATE_RUNNING,PROCESS_STATE_FATAL",
        "priority = 10",
        "autostart = true",
        "autorestart = true",
        "startsecs = 1",
        "startretries = 100",
        f"stderr_logfile = {home.logs / 'watchdog.log'}",
        "stderr_logfile_maxbytes = 5MB",
        "stderr_logfile_backups = 1",
        f'environment = JUNO_DCS_SUPERVISOR_URL="{url}"',
    ]) + "\n"


def venv_bin(name: str) -> str:
    """A console script of the environment this launcher runs in."""
    return str(Path(sys.executable).parent / name)


def rucio_environment(home: GridHome, settings: GridSettings, digests: Mapping[str, str]) -> dict[str, str]:
    """The environment of a program that uses Rucio (server, daemons, clients) and the grid's storage."""
    trust = pki.cert_dir(settings.pki_dir)
    return {
        "RUCIO_CONFIG": str(home.rucio_cfg),
        "X509_CERT_DIR": str(trust),
        # the grid's daemons reach only the grid's storage: its CA alone spares OpenSSL re-reading the
        # system bundle for every HTTPS session gfal2 opens (deletions, uploads)
        "SSL_CERT_DIR": str(trust),
        "SSL_CERT_FILE": str(trust / "ca.pem"),
        # Rucio asks the grid's token issuer (HTTPS, grid CA) with requests, which reads neither of the above
        "REQUESTS_CA_BUNDLE": str(trust / "ca.pem"),
        "JUNO_DCS_CONFIG_DIGEST": digests.get("rucio", ""),
    }


def grid_programs(
    home: GridHome, state: GridState, settings: GridSettings, digests: Mapping[str, str], rses: list[str],
    squids: Sequence[conditions.SquidHome] = (), wms: WmsLayout | None = None,
) -> list[Program]:
    """Every program of the grid. `digests` fingerprints each program's configuration ("rucio", "activemq",
    "zookeeper", "kafka", "xrootd-<RSE>"): a changed fingerprint changes the program's section, so the supervisor
    restarts exactly the programs whose configuration changed on `up`, and only them."""
    rucio_env = rucio_environment(home, settings, digests)
    programs = [
        # Rucio's cache: every Rucio process asks for it once, when it starts, and runs uncached for its whole life
        # if it does not answer then, so it starts first
        Program(name="memcached", command=cache.command(home), priority=50, startsecs=1),
        Program(
            name="zookeeper",
            command=kafka.zookeeper_command(home, kafka_dir(settings.node_modules)),
            priority=80,
            environment={"JUNO_DCS_CONFIG_DIGEST": digests.get("zookeeper", "")},
        ),
        # A broker restarted within ZooKeeper's session timeout (6 s) of being killed finds its old registration
        # and exits after 2-3 s: ten retries (the supervisor waits 1, 2, 3 ... s between them) outlast the
        # session. The supervisor stops programs in reverse priority, so Kafka stops while ZooKeeper still runs.
        Program(
            name="kafka",
            command=kafka.kafka_command(home, kafka_dir(settings.node_modules)),
            priority=90,
            startsecs=5,
            startretries=10,
            stopwaitsecs=60,
            environment={"JUNO_DCS_CONFIG_DIGEST": digests.get("kafka", "")},
        ),
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
            environment={"JUNO_DCS_CONFIG_DIGEST": digests.get("activemq", "")},
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
                "juno_dcs.grid.rucio_app:application",  # Rucio's, but for the CLI's browser login
            ],
            priority=200,
            environment=rucio_env,
            pg_connections=settings.rucio_workers * RUCIO_SERVER_POOL.cap,
        ),
    ]
    # the planner's statistics of the grid's database, where the server's autovacuum is off (grid/dbstats.py)
    programs.append(Program(
        name="db-stats",
        command=[venv_bin("juno-dcs"), "db-stats", "--home", str(home.root)],
        priority=120, pg_connections=1,
    ))
    if settings.storage == "xrootd":
        for rse in rses:
            programs.append(Program(
                name=f"xrootd-{rse}",
                command=storage.xrootd_command(home, rse),
                priority=150,
                directory=storage.admin_dir(home),
                environment={
                    "LD_PRELOAD": str(settings.bind_shim),
                    "XDG_CACHE_HOME": str(storage.admin_dir(home)),
                    "JUNO_DCS_CONFIG_DIGEST": digests.get(f"xrootd-{rse}", ""),
                },
            ))
    fts_config = str(home.etc / "transfer.yaml")
    fts_env = {"X509_CERT_DIR": str(pki.cert_dir(settings.pki_dir)), "JUNO_DCS_CONFIG_DIGEST": digests.get("fts", "")}
    programs.append(Program(
        name="fts-server",
        command=[venv_bin("juno-fts"), "serve", "--config", fts_config, "--port", str(state.ports.fts),
                 "--workers", str(FTS_SERVER_WORKERS)],
        priority=250, environment=fts_env, pg_connections=FTS_SERVER_WORKERS * FTS_SERVER_POOL,
    ))
    programs.append(Program(
        name="fts-worker",
        command=[venv_bin("juno-fts"), "worker", "--config", fts_config],
        priority=250, environment=fts_env, stopwaitsecs=60,
        pg_connections=FTS_WORKER_POOL + 1,  # and its LISTEN connection
    ))
    daemon_env = {**rucio_env, "RUCIO_CONFIG": str(home.rucio_daemons_cfg)}
    for daemon, args in CONVEYOR_DAEMONS.items():
        programs.append(Program(name=f"rucio-{daemon}", command=[venv_bin(f"rucio-{daemon}"), *args], priority=300,
                                environment=daemon_env, pg_connections=RUCIO_DAEMON_POOL.cap))
    reaper_env = {**daemon_env, "RUCIO_CONFIG": str(home.rucio_reaper_cfg)}  # without the cache (grid/cache.py)
    for daemon in RUCIO_DAEMONS:
        programs.append(
            Program(
                name=f"rucio-{daemon}",
                command=[venv_bin(f"rucio-{daemon}"), "--sleep-time",
                         str(max(settings.daemon_sleep, DAEMON_SLEEP.get(daemon, 0)))],
                priority=300,
                environment=reaper_env if daemon == "reaper" else daemon_env,
                pg_connections=RUCIO_DAEMON_POOL.cap,
            )
        )
    # condition data: the read-only service on MariaDB, then one Squid per data centre in front of it
    programs.append(Program(
        name="conditions",
        command=conditions.service_command(home.etc / "conditions.yaml", state.ports.port("conditions"),
                                           python=venv_bin("python")),
        priority=260, environment={"JUNO_DCS_CONFIG_DIGEST": digests.get("conditions", "")},
    ))
    for squid in squids:
        site = squid.root.name
        programs.append(Program(
            name=f"squid-{site}", command=conditions.squid_command(squid.conf), priority=270, stopwaitsecs=10,
            directory=squid.root, environment={"JUNO_DCS_CONFIG_DIGEST": digests.get(f"squid-{site}", "")},
        ))
    # the raw-data ingestor: Kafka (spade.files) -> Rucio; started after Kafka and the Rucio server
    programs.append(Program(
        name="ingest",
        command=[venv_bin("juno-dcs"), "ingest", "run", "--config", str(home.etc / "ingest.yaml")],
        priority=350, stopwaitsecs=60, pg_connections=1,  # its heartbeats: one short connection per pass
        environment={**rucio_env, "RUCIO_CONFIG": str(home.client_cfg("rawdata")),
                     "JUNO_DCS_CONFIG_DIGEST": digests.get("ingest", "")},
    ))
    if wms is not None:
        programs += wms_programs(home, state, digests, wms, rucio_env)
    return programs


def wms_programs(home: GridHome, state: GridState, digests: Mapping[str, str], wms: WmsLayout,
                 rucio_env: Mapping[str, str]) -> list[Program]:
    """The dispatcher and its agent, the pilot factory (its pilots are its own children, not the supervisor's)
    and the production manager's daemon."""
    wms_env = {**rucio_env, "RUCIO_CONFIG": str(home.client_cfg("root")),
               "JUNO_DCS_CONFIG_DIGEST": digests.get("wms", "")}
    prod_env = {**rucio_env, "RUCIO_CONFIG": str(home.client_cfg("production")),
                "JUNO_DCS_CONFIG_DIGEST": digests.get("prodsys", "")}
    return [
        Program(name="wms-server", priority=400, environment=wms_env,
                command=[venv_bin("juno-wms"), "serve", "--config", str(wms.wms_config),
                         "--port", str(wms.dispatcher_port), "--workers", str(WMS_SERVER_WORKERS)],
                pg_connections=WMS_SERVER_WORKERS * 2 * WMS_SERVER_POOL),
        Program(name="wms-agent", priority=410, environment=wms_env, pg_connections=2,
                command=[venv_bin("juno-wms"), "agent", "--config", str(wms.wms_config)]),
        Program(name="pilot-factory", priority=420, stopwaitsecs=60,
                environment={**rucio_env, "JUNO_DCS_CONFIG_DIGEST": digests.get("pilots", "")},
                command=[venv_bin("juno-pilot"), "factory", "--config", str(wms.factory_config)]),
        Program(name="prodsys", priority=430, environment=prod_env, pg_connections=1,
                command=[venv_bin("juno-prod"), "--config", str(wms.prodsys_config), "run"]),
    ]
