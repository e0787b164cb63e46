"""The ingestor under faults, against the grid's Kafka 0.9 and Rucio: every kind of bad message dead-lettered with
its reason while good ones flow; SIGKILLs of two ingestors at random moments; the broker restarted and the Rucio
server stopped for 30 s mid-stream; and the same happy path on a modern-protocol broker (Tansu)."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from juno_dcs.grid.home import GridHome
from juno_dcs.grid.supervisor import Supervisor
from juno_rucio_policy.paths import path_for
from tests.conftest import Grid
from tests.integration.ingest_helpers import (
    IngestorProcess,
    RucioView,
    dead_letters,
    good_message,
    grid_kafka,
    new_topic,
    publish,
    unique_stream,
)
from tests.integration.tansu import tansu_broker
from tests.integration.transfer_helpers import adler32, put, se


def _bad(stream: str) -> dict[str, tuple[bytes, str | None, str]]:
    """case -> (message value, field at fault, words of the reason)."""
    base = json.loads(good_message(stream, 9999).to_json())

    def changed(**changes: Any) -> bytes:
        body = {**base, **changes}
        return json.dumps({k: v for k, v in body.items() if v is not None}).encode()

    return {
        "not-json": (b"this is not JSON {", None, "not JSON"),
        "missing-field": (changed(adler32=None), "adler32", "Field required"),
        "wrong-type": (changed(size="large"), "size", "valid integer"),
        "negative-size": (changed(size=-1), "size", "greater than or equal to 0"),
        "bad-checksum-format": (changed(adler32="zz-not-hex"), "adler32", "pattern"),
        "schema-breaking-name": (changed(name="RAW_FILE_1.bin"), "name", "not a JUNO raw file"),
        "path-traversal": (changed(name="../../../etc/passwd"), "name", "not a JUNO raw file"),
        "over-size-limit": (changed(spade_id="x" * 40000), None, "over the limit"),
        "unknown-version": (changed(version=7), "version", "unknown schema version 7"),
    }


@pytest.fixture(scope="module")
def bad_message_run(grid: Grid, grids_root: Path) -> dict[str, Any]:
    """Bad messages interleaved with 200 good ones on a fresh topic, through one ingestor run."""
    kafka, topic, stream = grid_kafka(grid), new_topic(grid), unique_stream("bad")
    cases = _bad(stream)
    values: list[tuple[bytes | None, bytes | None]] = []
    for i in range(200):
        good = good_message(stream, i)
        values.append((good.name.encode(), good.to_json()))
        if i % 20 == 0 and i // 20 < len(cases):
            case = list(cases)[i // 20]
            values.append((case.encode(), cases[case][0]))
    publish(kafka, topic, values)
    ingestor = IngestorProcess.make(grid, grids_root / f"bad-{topic}", kafka, topic)
    metrics = ingestor.run_once()
    letters = {d["key"]: d for d in dead_letters(kafka, topic, len(cases))}
    return {"stream": stream, "cases": cases, "letters": letters, "metrics": metrics, "view": RucioView(grid)}


@pytest.mark.parametrize("case", list(_bad("x")))
def test_a_bad_message_is_dead_lettered_with_its_reason(bad_message_run: dict[str, Any], case: str) -> None:
    _, field, words = bad_message_run["cases"][case]
    letter = bad_message_run["letters"][case]
    assert letter["kind"] == "rejected"
    assert letter["field"] == field
    assert words in letter["reason"]
    assert letter["original_bytes"] == len(bad_message_run["cases"][case][0])


def test_good_messages_flow_past_the_bad_ones(bad_message_run: dict[str, Any]) -> None:
    metrics, view, stream = bad_message_run["metrics"], bad_message_run["view"], bad_message_run["stream"]
    assert metrics["dead_lettered"] == {"rejected": len(bad_message_run["cases"])}
    assert view.lengths(stream) == 200
    (block,) = view.blocks(stream)
    assert block == f"block.20260301.{stream}"


SE_CASES = ("good", "also-good", "wrong-checksum", "wrong-size", "missing")


@pytest.fixture(scope="module")
def se_check_run(grid: Grid, grids_root: Path) -> dict[str, Any]:
    """Five files announced on a fresh topic, through one ingestor run that checks each at IHEP_DISK's XRootD
    (`verify_at_se`): two written as announced, one whose message has another adler32, one whose message has
    another size, one never written."""
    kafka, topic, stream = grid_kafka(grid), new_topic(grid), unique_stream("se")
    davs = se(grid, "IHEP_DISK")
    messages, truth = {}, {}
    for i, case in enumerate(SE_CASES):
        data = os.urandom(1000 + i)
        name = good_message(stream, i).name
        url = f"{davs}/{path_for('raw', name)}"
        if case != "missing":
            put(grid, url, data)
        size, checksum = len(data), adler32(data)
        truth[case] = (name, size, checksum)
        announced = {"size": size + 1 if case == "wrong-size" else size, "location": url,
                     "adler32": f"{int(checksum, 16) ^ 0xFF:08x}" if case == "wrong-checksum" else checksum}
        messages[case] = good_message(stream, i).model_copy(update=announced)
    publish(kafka, topic, [(m.name.encode(), m.to_json()) for m in messages.values()])
    ingestor = IngestorProcess.make(grid, grids_root / f"se-{topic}", kafka, topic, verify_at_se=True)
    metrics = ingestor.run_once()
    letters = {d["key"]: d for d in dead_letters(kafka, topic, 3)}
    root = "root://" + davs.split("://", 1)[1] + "/"  # where the check looks: the RSE's root protocol
    return {"stream": stream, "messages": messages, "truth": truth, "letters": letters, "metrics": metrics,
            "view": RucioView(grid), "root": root}


@pytest.mark.parametrize("case", ["wrong-checksum", "wrong-size", "missing"])
def test_a_file_that_differs_at_the_se_is_quarantined_with_the_reason(se_check_run: dict[str, Any],
                                                                     case: str) -> None:
    name, size, checksum = se_check_run["truth"][case]
    announced = se_check_run["messages"][case]
    assert set(se_check_run["letters"]) == {se_check_run["truth"][c][0] for c in SE_CASES if "good" not in c}
    letter = se_check_run["letters"][name]
    assert (letter["kind"], letter["field"]) == ("quarantined", "file")
    assert letter["reason"] == {
        "wrong-checksum": f"adler32 at the SE is {checksum}, the message says {announced.adler32}",
        "wrong-size": f"size at the SE is {size} bytes, the message says {size + 1}",
        "missing": f"no such file at the SE: {se_check_run['root']}{path_for('raw', name)}",
    }[case]
    assert letter["original"] == announced.to_json().decode()
    assert not list(se_check_run["view"].client.list_replicas([{"scope": "raw", "name": name}]))


def test_a_file_that_matches_at_the_se_is_registered(se_check_run: dict[str, Any]) -> None:
    metrics, view, stream = se_check_run["metrics"], se_check_run["view"], se_check_run["stream"]
    assert metrics["dead_lettered"] == {"quarantined": 3}
    good = {se_check_run["truth"][c] for c in ("good", "also-good")}
    contents = {block: sorted(names) for block, names in view.contents(stream).items()}
    assert contents == {f"block.20260301.{stream}": sorted(name for name, _, _ in good)}
    for name, size, checksum in good:
        [replica] = view.client.list_replicas([{"scope": "raw", "name": name}])
        assert (replica["bytes"], replica["adler32"]) == (size, checksum)
        assert list(replica["rses"]) == ["IHEP_DISK"]


@pytest.mark.slow  # 10,000 messages through SIGKILLed ingestors
@pytest.mark.timeout(1200)  # waits up to 15 minutes for 10,000 files
def test_sigkilled_ingestors_register_every_file_exactly_once(grid: Grid, grids_root: Path) -> None:
    """Two ingestors share the partitions; each is SIGKILLed at random moments and restarted."""
    total = 10_000
    kafka, topic, stream = grid_kafka(grid), new_topic(grid, partitions=4), unique_stream("kill")
    view = RucioView(grid)
    directory = grids_root / f"kill-{topic}"
    ingestors = [IngestorProcess.make(grid, directory, kafka, topic, batch_size=500) for _ in range(2)]
    for ingestor in ingestors:
        ingestor.start()
    messages = [good_message(stream, i, per_day=2000) for i in range(total)]
    publisher = threading.Thread(target=publish, args=(kafka, topic, [(m.name.encode(), m.to_json())
                                                                      for m in messages]))
    publisher.start()
    rng = random.Random(20261125)  # noqa: S311 - chaos, not cryptography
    # The kills are placed by progress, not by time: one at a random point in each of five windows between 5 % and
    # 80 % of the files, so they land mid-stream however fast this machine ingests.
    points = [int(total * rng.uniform(0.05 + 0.15 * k, 0.20 + 0.15 * k)) for k in range(5)]
    kills_at: list[int] = []

    def chaos(found: int) -> None:
        if points and found >= points[0]:
            points.pop(0)
            victim = rng.choice(ingestors)
            if victim.kill():
                kills_at.append(found)
            time.sleep(rng.uniform(0, 2))
            victim.start()

    try:
        found = view.wait_files(stream, total, timeout=900, on_wait=chaos, poll=0.25)
    finally:
        publisher.join(120)
        for ingestor in ingestors:
            ingestor.stop()
    assert len(kills_at) >= 3, f"killed at {kills_at} files, planned {points} still ahead"
    assert all(at < total for at in kills_at)
    assert found == total
    files = list(view.client.list_dids("raw", {"name": f"RUN.*.{stream}.*"}, did_type="file"))
    assert len(files) == len(set(files)) == total
    contents = view.contents(stream)
    attached = [name for names in contents.values() for name in names]
    assert len(attached) == len(set(attached)) == total  # attached once each
    expected_blocks = {m.block for m in messages}
    assert set(contents) == expected_blocks
    assert all(name.split(".")[4] == block.split(".")[1] for block, names in contents.items() for name in names)


@pytest.mark.slow  # a broker restart and a Rucio outage: about a minute of waiting
def test_broker_restart_and_rucio_outage_lose_nothing(grid: Grid, grids_root: Path) -> None:
    total = 3000
    kafka, topic, stream = grid_kafka(grid), new_topic(grid), unique_stream("out")
    view = RucioView(grid)
    home = GridHome(grid.home)
    sup = Supervisor(home, home.load_state())
    ingestor = IngestorProcess.make(grid, grids_root / f"outage-{topic}", kafka, topic, batch_size=200)
    ingestor.start()
    messages = [good_message(stream, i) for i in range(total)]
    try:
        publish(kafka, topic, [(m.name.encode(), m.to_json()) for m in messages[:1000]])
        view.wait_files(stream, 300, timeout=120)
        sup.restart_program("kafka")  # mid-stream: some of the first thousand may still be waiting
        publish(kafka, topic, [(m.name.encode(), m.to_json()) for m in messages[1000:2000]])
        sup.stop_program("rucio-server")
        try:
            publish(kafka, topic, [(m.name.encode(), m.to_json()) for m in messages[2000:]])
            time.sleep(30)
            metrics = json.loads(next((ingestor.config.parent / "metrics").glob("*.json")).read_text())
            assert metrics["state"] == "waiting for Rucio", metrics
        finally:
            sup.start_program("rucio-server")
        found = view.wait_files(stream, total, timeout=300)
    finally:
        ingestor.stop()
    assert found == total
    assert sorted(n for names in view.contents(stream).values() for n in names) == sorted(m.name for m in messages)


@pytest.mark.slow  # a second broker (its own process and topics) for the same flow: make test keeps Kafka 0.9
def test_a_modern_protocol_broker_works_the_same(grid: Grid, grids_root: Path) -> None:
    with tansu_broker() as broker:
        kafka, topic, stream = broker.settings, "spade.files", unique_stream("tansu")
        broker.create_topics({topic: 3, f"{topic}.dead": 1})
        messages = [good_message(stream, i) for i in range(300)]
        publish(kafka, topic, [(m.name.encode(), m.to_json()) for m in messages] + [(b"bad", b"{not json")])
        ingestor = IngestorProcess.make(grid, grids_root / f"tansu-{stream}",
                                        kafka.model_copy(update={"max_poll_interval_ms": 6000}), topic)
        metrics = ingestor.run_once()
        letters = dead_letters(kafka, topic, 1, timeout=30)
    view = RucioView(grid)
    assert view.lengths(stream) == 300
    assert metrics["dead_lettered"] == {"rejected": 1}
    assert [d["key"] for d in letters] == ["bad"]
    assert metrics["latency_p99_s"] is not None  # a modern broker stamps records: latency is measured
