"""Pure logic of the ingestor: message validation (every kind of bad input), blocks and their closing rule,
the configuration's errors, dead letters and metrics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from juno_dcs.ingest import message
from juno_dcs.ingest.blocks import Block, metadata
from juno_dcs.ingest.config import IngestConfigError, parse_config
from juno_dcs.ingest.deadletter import ORIGINAL_LIMIT, DeadLetter, Source
from juno_dcs.ingest.metrics import Metrics, read_all
from juno_dcs.ingest.status import rule_reason

NAME = "RUN.001234.physics.00007.20261125.rtraw"
GOOD: dict[str, Any] = {
    "version": 1, "spade_id": "spade-1", "name": NAME, "size": 1000, "adler32": "0a1b2c3d",
    "location": f"davs://localhost:25010/raw/2026/1125/001234/{NAME}", "run": 1234, "stream": "physics",
    "received_at": "2026-11-25T23:59:59+08:00",
}


def encode(**changes: Any) -> bytes:
    body = {**GOOD, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_a_good_message_becomes_a_typed_file() -> None:
    parsed = message.parse(encode())
    assert isinstance(parsed, message.FileArrived)
    assert parsed.received_at == dt.datetime(2026, 11, 25, 15, 59, 59, tzinfo=dt.UTC)
    assert parsed.block == "block.20261125.physics"  # the receiving day in UTC
    assert message.parse(parsed.to_json()) == parsed


BAD = {
    "not JSON": (b"{'name': 1", None, "not JSON"),
    "not an object": (b"[1, 2]", None, "not a JSON object"),
    "binary": (b"\xff\xfe\x00", None, "not JSON"),
    "empty value": (None, None, "empty message"),
    "missing field": (encode(size=...), "size", "Field required"),
    "wrong type": (encode(size="big"), "size", "valid integer"),
    "float size": (encode(size=1.5), "size", "integer"),
    "negative size": (encode(size=-5), "size", "greater than or equal to 0"),
    "bad checksum format": (encode(adler32="XYZ"), "adler32", "should match pattern"),
    "upper-case checksum": (encode(adler32="0A1B2C3D"), "adler32", "should match pattern"),
    "path traversal in the name": (encode(name="../../etc/passwd"), "name", "not a JUNO raw file"),
    "a name with a slash": (encode(name=f"x/{NAME}"), "name", "not a JUNO raw file"),
    "a name outside the schema": (encode(name="RUN.1.physics.1.20261125.rtraw"), "name", "expected RUN."),
    "not a calendar date": (encode(name=NAME.replace("20261125", "20260230")), "name", "not a calendar date"),
    "path traversal in the location": (encode(location=f"davs://h:1/raw/../../{NAME}"), "location", "clean URL"),
    "location elsewhere": (encode(location=f"davs://h:1/other/{NAME}"), "location", "not IHEP_DISK's path"),
    "unsupported scheme": (encode(location=f"file:///raw/2026/1125/001234/{NAME}"), "location", "scheme"),
    "run differs from the name": (encode(run=99), "run", "differs from the name's run"),
    "stream differs from the name": (encode(stream="calib"), "stream", "differs from the name's stream"),
    "time without offset": (encode(received_at="2026-11-25T10:00:00"), "received_at", "UTC offset"),
    "not a time": (encode(received_at="yesterday"), "received_at", "datetime"),
    "unknown field": (encode(colour="red"), "colour", "Extra inputs"),
    "unknown schema version": (encode(version=2), "version", "unknown schema version 2"),
    "no version": (encode(version=...), "version", "unknown schema version None"),
    "over the size limit": (encode(spade_id="x" * 20000), None, "over the limit"),
    "another RSE": (encode(rse="CNAF_DISK"), "rse", "IHEP_DISK"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_every_bad_message_is_rejected_with_its_reason(case: str) -> None:
    raw, field, words = BAD[case]
    parsed = message.parse(raw)
    assert isinstance(parsed, message.Rejection), parsed
    assert parsed.field == field
    assert words in parsed.reason
    assert parsed.text()


def test_the_published_json_schema_is_the_models() -> None:
    path = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "spade-file-arrived-v1.json"
    assert json.loads(path.read_text()) == message.json_schema()


def test_a_block_closes_after_its_day_grace_and_quiet_period() -> None:
    block = Block.of("block.20261125.physics")
    end = dt.datetime(2026, 11, 26, tzinfo=dt.UTC).timestamp()
    assert block.day_end() == end
    block.attached([1234, 1200], now=end - 10)
    assert (block.run_first, block.run_last) == (1200, 1234)
    assert not block.due(end + 100, grace=3600, quiet=60)
    assert "grace" in (block.reason_not_due(end + 100, grace=3600, quiet=60) or "")
    block.attached([1300], now=end + 3650)
    assert not block.due(end + 3660, grace=3600, quiet=60)
    assert "quiet" in (block.reason_not_due(end + 3660, 3600, 60) or "")
    assert block.due(end + 3711, grace=3600, quiet=60)
    block.open = False
    assert not block.due(end + 10**6, 3600, 60)
    assert metadata(block) == {"block_date": "2026-11-25", "block_stream": "physics", "juno_ingest": True,
                               "run_first": 1200, "run_last": 1300}


CONFIG = 'kafka: {bootstrap_servers: ["127.0.0.1:9092"], api_version: [0, 9]}\napply_rules: false\n'


def test_the_configuration_reads_durations_and_defaults() -> None:
    config = parse_config(CONFIG + "close_grace: 2 hours\nclose_quiet: 30\n", "ingest.yaml")
    assert (config.close_grace, config.close_quiet, config.topic) == (7200, 30, "spade.files")
    assert config.kafka.common()["api_version"] == (0, 9)


@pytest.mark.parametrize(("text", "words"), [
    ("", "empty"),
    ("- a\n", "top level must be a mapping"),
    ("kafka: {bootstrap_servers: [nohost]}\napply_rules: false\n", "ingest.yaml:1: kafka.bootstrap_servers"),
    (CONFIG + "batch_size: 0\n", "ingest.yaml:3: batch_size"),
    (CONFIG + "close_grace: soon\n", "ingest.yaml:3: close_grace: not a duration"),
    (CONFIG + "topic: 'a topic'\n", "ingest.yaml:3: topic"),
    (CONFIG + "colour: red\n", "unknown key 'colour'"),
    ('kafka: {bootstrap_servers: ["a:1"]}\n', "apply_rules: needs policy_dir and topology"),
    ("kafka: [\n", "not valid YAML"),
])
def test_a_bad_configuration_says_where(text: str, words: str) -> None:
    with pytest.raises(IngestConfigError) as info:
        parse_config(text, "ingest.yaml")
    assert words in str(info.value)


def test_a_dead_letter_keeps_the_reason_and_the_original() -> None:
    source = Source("spade.files", 2, 41, b"key", b"x" * (ORIGINAL_LIMIT + 10))
    body = json.loads(DeadLetter("rejected", "not JSON", None, source).to_json("host:1"))
    assert (body["kind"], body["reason"], body["partition"], body["offset"]) == ("rejected", "not JSON", 2, 41)
    assert len(body["original"]) == ORIGINAL_LIMIT
    assert body["original_bytes"] == ORIGINAL_LIMIT + 10


def test_metrics_are_written_and_read_back(tmp_path: Path) -> None:
    metrics = Metrics()
    metrics.consumed, metrics.registered = 10, 8
    metrics.dead_lettered["rejected"] += 2
    metrics.latencies.extend([0.1, 0.2, 0.3])
    metrics.lag = {"spade.files[0]": 3, "spade.files[1]": 4}
    metrics.write(tmp_path / "m" / "a.json")
    (found,) = read_all(tmp_path / "m")
    assert (found["consumed"], found["lag_total"], found["latency_p50_s"]) == (10, 7, 0.2)


@pytest.mark.parametrize(("rule", "words"), [
    ({"state": "OK"}, None),
    ({"state": "STUCK", "error": "NO_SOURCES"}, "stuck: NO_SOURCES"),
    ({"state": "STUCK"}, "no reason"),
    ({"state": "REPLICATING", "locks_replicating_cnt": 3}, "3 file(s) being copied"),
    ({"state": "REPLICATING", "locks_stuck_cnt": 2, "error": "checksum"}, "2 file(s) stuck: checksum"),
    ({"state": "SUSPENDED"}, "suspended"),
])
def test_a_rule_that_is_not_ok_has_a_reason(rule: dict[str, Any], words: str | None) -> None:
    reason = rule_reason(rule)
    assert reason is None if words is None else words in (reason or "")


def test_metrics_of_gone_local_instances_are_left_out_when_asked(tmp_path: Path) -> None:
    import socket

    live, gone, remote = Metrics(), Metrics(), Metrics()
    gone.instance = f"{socket.gethostname()}:999999999"  # no such pid
    remote.instance = "elsewhere.example:1"
    for name, metrics in (("live", live), ("gone", gone), ("remote", remote)):
        metrics.write(tmp_path / "m" / f"{name}.json")
    assert len(read_all(tmp_path / "m")) == 3
    assert sorted(m["instance"] for m in read_all(tmp_path / "m", live_only=True)) == sorted(
        [live.instance, remote.instance])


def test_an_ok_rule_short_of_the_blocks_files_says_so() -> None:
    from juno_dcs.ingest.status import RuleView, _short_of_files

    view = RuleView(id="r", rse_expression="CNAF_DISK", state="OK", locks_ok=421, locks_replicating=0, locks_stuck=0)
    assert _short_of_files(view, 421).reason is None
    short = _short_of_files(view, 667)
    assert short.state == "OK"
    assert short.reason == "OK for 421 of 667 files: Rucio's judge has not evaluated the 246 later attachment(s) yet"
    replicating = view.model_copy(update={"state": "REPLICATING", "reason": "3 file(s) being copied"})
    assert _short_of_files(replicating, 667) == replicating
