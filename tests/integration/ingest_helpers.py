"""Helpers of the ingestor's integration tests: topics, messages, ingestor processes and Rucio counts."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from juno_dcs.grid.home import GridHome
from juno_dcs.grid.kafka import ensure_topics, kafka_settings
from juno_dcs.grid.launcher import root_client
from juno_dcs.ingest.kafka_config import KafkaSettings
from juno_dcs.ingest.message import FileArrived
from juno_dcs.packaged import data_file
from juno_rucio_policy.naming import raw_file_name
from juno_rucio_policy.paths import path_for
from tests.conftest import JUNO_DCS, Grid
from tests.integration.tansu import close_quietly


def unique_stream(prefix: str = "t") -> str:
    return prefix + uuid.uuid4().hex[:9]


def good_message(stream: str, index: int, day: dt.date = dt.date(2026, 3, 1), per_day: int = 10_000,
                 run_base: int = 200000) -> FileArrived:
    run = run_base + index // 1000
    name = raw_file_name(run, stream, index % 1000, day)
    received = dt.datetime.combine(day, dt.time(1), tzinfo=dt.UTC) + dt.timedelta(seconds=index % per_day)
    return FileArrived(version=1, spade_id=f"test-{index}", name=name, size=1000 + index, adler32=f"{index:08x}",
                       location=f"davs://localhost:1/{path_for('raw', name)}", run=run, stream=stream,
                       received_at=received)


def grid_kafka(grid: Grid) -> KafkaSettings:
    return kafka_settings(GridHome(grid.home).load_state())


def new_topic(grid: Grid, partitions: int = 3) -> str:
    topic = f"test.{uuid.uuid4().hex[:10]}"
    home = GridHome(grid.home)
    ensure_topics(home, home.load_state(), {topic: partitions, f"{topic}.dead": 1})
    return topic


def publish(kafka: KafkaSettings, topic: str, values: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = kafka.producer(linger_ms=10)
    for key, value in values:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=60)
    close_quietly(producer)


def dead_letters(kafka: KafkaSettings, topic: str, expected: int, timeout: float = 120) -> list[dict[str, Any]]:
    """The dead letters of `topic` (its .dead topic), once at least `expected` arrived."""
    from kafka import TopicPartition

    consumer = kafka.consumer(group_id=None)
    tp = TopicPartition(f"{topic}.dead", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            found += [json.loads(r.value) for r in records]
    close_quietly(consumer)
    return found


@dataclass
class IngestorProcess:
    """`juno-dcs ingest run` as a child process with its own config, group and journal."""

    config: Path
    journal: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def make(cls, grid: Grid, directory: Path, kafka: KafkaSettings, topic: str, **extra: Any) -> IngestorProcess:
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "ingest.yaml"
        body = {
            "kafka": kafka.model_dump(mode="json", exclude_none=True),
            "topic": topic, "dead_letter_topic": f"{topic}.dead", "group_id": f"g-{topic}",
            "rucio": {"config": str(grid.home / "etc" / "clients" / "rawdata.cfg")},
            "apply_rules": False, "close_grace": 0, "close_quiet": 3600,
            "journal": str(directory / "journal.jsonl"), "metrics_dir": str(directory / "metrics"),
            "retry": {"initial": 0.5, "maximum": 3},
            "policy_dir": str(data_file("placement")), "topology": str(data_file("topology.yaml")),
            # the grid's ingestor's token client: its check at the SE reads with the raw-data service's token
            "storage_token": yaml.safe_load((grid.home / "etc" / "ingest.yaml").read_text())["storage_token"],
            **extra,
        }
        config.write_text(json.dumps(body))
        return cls(config, directory / "journal.jsonl", directory / "ingest.log")

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([JUNO_DCS, "ingest", "run", "--config", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT)

    def kill(self) -> bool:
        """SIGKILL the running ingestor; False when there was none to kill."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
            return True
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def run_once(self, timeout: float = 600) -> dict[str, Any]:
        proc = subprocess.run([JUNO_DCS, "ingest", "run", "--config", str(self.config), "--run-once"],
                              capture_output=True, text=True, timeout=timeout, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)  # type: ignore[no-any-return]


class RucioView:
    """What Rucio holds for one stream's blocks, through the Rucio client."""

    def __init__(self, grid: Grid) -> None:
        home = GridHome(grid.home)
        self.client = root_client(home, home.load_state())

    def blocks(self, stream: str) -> list[str]:
        return sorted(self.client.list_dids("raw", {"name": f"block.*.{stream}"}, did_type="dataset"))

    def contents(self, stream: str) -> dict[str, list[str]]:
        return {b: [c["name"] for c in self.client.list_content("raw", b)] for b in self.blocks(stream)}

    def lengths(self, stream: str) -> int:
        return sum(int(self.client.get_did("raw", b, dynamic_depth="FILE")["length"] or 0)
                   for b in self.blocks(stream))

    def wait_files(self, stream: str, count: int, timeout: float, on_wait: Callable[[int], None] | None = None,
                   poll: float = 2.0) -> int:
        """Poll until the stream's blocks hold `count` files; `on_wait` sees the count found at each poll."""
        deadline = time.monotonic() + timeout
        found = self.lengths(stream)
        while found < count and time.monotonic() < deadline:
            if on_wait is not None:
                on_wait(found)
            time.sleep(poll)
            found = self.lengths(stream)
        return found
