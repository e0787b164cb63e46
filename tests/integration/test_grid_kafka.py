"""The grid's Apache Kafka 0.9 and its ZooKeeper: topics made by `up`, a round trip with the grid's client settings,
and messages that outlive a restart and a SIGKILL of the broker."""

from __future__ import annotations

import os
import signal
import time
import uuid
import warnings
from typing import Any

import pytest

from juno_dcs.grid import health
from juno_dcs.grid import kafka as grid_kafka
from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.grid.supervisor import Supervisor
from juno_dcs.ingest.kafka_config import KafkaSettings
from juno_dcs.settings import GridSettings
from tests.conftest import Grid
from tests.integration.tansu import close_quietly

with warnings.catch_warnings():  # kafka-python 3.0 builds its protocol classes with a deprecated importlib call
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka  # noqa: F401 - imported here once, under the filter

# kafka-python 3.0.12 leaks the socket of a connection being set up when its client closes (see close_quietly)
pytestmark = [pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")]


def _grid(grid: Grid) -> tuple[GridHome, GridState]:
    home = GridHome(grid.home)
    return home, home.load_state()


def _topic() -> str:
    return f"test.kafka.{uuid.uuid4().hex[:10]}"


def _produce(settings: KafkaSettings, topic: str, messages: dict[bytes, bytes]) -> None:
    producer = settings.producer()
    try:
        for key, value in messages.items():
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=60)
    finally:
        close_quietly(producer)


def _consume(settings: KafkaSettings, topic: str, expected: int, group: str | None = None,
             timeout: float = 90) -> dict[bytes, bytes]:
    """The records of `topic` (from the group's committed offsets, or from the start without a group), once
    `expected` of them are there or the time is up; a group commits what it read."""
    consumer = settings.consumer(topic, group_id=group)
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        if group is not None:
            consumer.commit()
    finally:
        close_quietly(consumer)
    assert len(records) == len({r.key for r in records}), "a record was read twice"
    return {r.key: r.value for r in records}


def _messages(count: int, tag: str) -> dict[bytes, bytes]:
    return {f"{tag}-{i:04d}".encode(): f'{{"n": {i}, "tag": "{tag}"}}'.encode() for i in range(count)}


def _wait_healthy(state: GridState, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (result := health.check_kafka(state)).ok:
        assert time.monotonic() < deadline, f"Kafka not healthy after {timeout:.0f} s: {result.detail}"
        time.sleep(0.5)


def test_up_made_the_grid_topics_and_status_shows_kafka(grid: Grid) -> None:
    home, state = _grid(grid)
    wanted = grid_kafka.grid_topics(GridSettings())
    assert wanted == {"spade.files": 3, "spade.files.dead": 3}
    found = grid_kafka.describe_topics(grid_kafka.kafka_settings(state), list(wanted))
    assert {name: info.partitions for name, info in found.items()} == wanted
    assert all(info.ready for info in found.values())
    assert grid_kafka.ensure_topics(home, state, wanted) == []  # nothing left to do
    status: dict[str, Any] = grid.status()
    assert status["services"]["kafka"] == f"kafka://127.0.0.1:{grid.base_port + 31}"
    assert status["health"]["kafka"]["ok"], status["health"]
    assert {"zookeeper", "kafka"} <= set(status["processes"])
    assert (home.data / "kafka" / "spade.files-0").is_dir()
    assert (home.data / "zookeeper" / "version-2").is_dir()


def test_ensure_topics_creates_and_adds_partitions(grid: Grid) -> None:
    home, state = _grid(grid)
    topic = _topic()
    assert grid_kafka.ensure_topics(home, state, {topic: 2}) == [f"created Kafka topic {topic} (2 partitions)"]
    assert grid_kafka.ensure_topics(home, state, {topic: 2}) == []
    assert grid_kafka.ensure_topics(home, state, {topic: 4}) == [f"Kafka topic {topic}: 2 -> 4 partitions"]
    assert grid_kafka.ensure_topics(home, state, {topic: 3}) == []  # partitions are never removed
    assert grid_kafka.describe_topics(grid_kafka.kafka_settings(state), [topic])[topic].partitions == 4


def test_round_trip_with_the_grid_client_settings(grid: Grid) -> None:
    home, state = _grid(grid)
    settings = grid_kafka.kafka_settings(state)
    assert settings.api_version == (0, 9)
    topic, group = _topic(), f"g-{uuid.uuid4().hex[:8]}"
    grid_kafka.ensure_topics(home, state, {topic: 3})
    sent = _messages(200, "rt")
    _produce(settings, topic, sent)
    assert _consume(settings, topic, len(sent), group=group) == sent
    more = _messages(10, "more")
    _produce(settings, topic, more)
    assert _consume(settings, topic, len(more), group=group) == more  # the group resumes where it committed


@pytest.mark.slow  # the broker restarted and killed
def test_messages_survive_a_restart_and_a_kill_of_the_broker(grid: Grid) -> None:
    home, state = _grid(grid)
    settings = grid_kafka.kafka_settings(state)
    sup = Supervisor(home, state)
    topic = _topic()
    grid_kafka.ensure_topics(home, state, {topic: 3})
    first = _messages(100, "before-restart")
    _produce(settings, topic, first)

    before = sup.process("kafka").pid
    sup.restart_program("kafka")
    assert sup.process("kafka").pid != before
    _wait_healthy(state)
    assert _consume(settings, topic, len(first)) == first

    second = _messages(50, "before-kill")
    _produce(settings, topic, second)
    killed = sup.process("kafka").pid
    os.kill(killed, signal.SIGKILL)
    # the supervisor restarts it; the first tries fail until ZooKeeper expires the dead broker's session
    deadline = time.monotonic() + 120
    while (info := sup.process("kafka")).state != "RUNNING" or info.pid == killed:
        assert info.state != "FATAL", f"the supervisor gave up on kafka: {info.description}"
        assert time.monotonic() < deadline, f"kafka not back 120 s after the kill: {info.state} {info.description}"
        time.sleep(0.5)
    _wait_healthy(state)
    grid_kafka.ensure_topics(home, state, {topic: 3})  # returns once every partition has a leader again
    assert _consume(settings, topic, len(first) + len(second)) == {**first, **second}
    third = _messages(20, "after-kill")
    _produce(settings, topic, third)
    assert _consume(settings, topic, 170) == {**first, **second, **third}
    status: dict[str, Any] = grid.status()
    assert status["health"]["kafka"]["ok"], status["health"]
