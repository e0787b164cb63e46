"""The Kafka client settings against a modern Kafka-protocol broker (Tansu): what a site's own Kafka would be."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from juno_dcs.ingest.kafka_config import KafkaSettings
from tests.integration.tansu import close_quietly, tansu_broker

# kafka-python 3.0.12 leaks the socket of a connection being set up when its client closes (see close_quietly)
pytestmark = [pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")]


def _poll(consumer: Any, expected: int, timeout: float = 60) -> list[Any]:
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


@pytest.mark.slow  # a broker of its own
def test_round_trip_with_a_consumer_group() -> None:
    with tansu_broker() as broker:
        topic, group = f"test.tansu.{uuid.uuid4().hex[:10]}", f"g-{uuid.uuid4().hex[:8]}"
        broker.create_topics({topic: 3})
        settings = KafkaSettings.model_validate_json(broker.settings.model_dump_json())  # as a config file gives it
        assert settings.api_version is None
        sent = {f"file-{i:03d}".encode(): f"payload {i}".encode() for i in range(60)}
        producer = settings.producer()
        try:
            for key, value in sent.items():
                producer.send(topic, key=key, value=value)
            producer.flush(timeout=30)
        finally:
            close_quietly(producer)

        consumer = settings.consumer(topic, group_id=group)
        try:
            records = _poll(consumer, len(sent))
            consumer.commit()
        finally:
            close_quietly(consumer)
        assert {r.key: r.value for r in records} == sent
        assert len(records) == len(sent)
        assert len({r.partition for r in records}) > 1  # keys spread over the partitions

        again = settings.consumer(topic, group_id=group)  # the group's committed offsets: nothing left
        try:
            assert _poll(again, 1, timeout=5) == []
        finally:
            close_quietly(again)
