"""`juno-dcs spade-sim` for real: files written to the grid's IHEP_DISK through XRootD (root://, gfal2) and their
messages on the grid's Kafka, read back and checked against the storage; and the same command publishing to a
modern Kafka-protocol broker (Tansu) without any grid."""

from __future__ import annotations

import datetime as dt
import errno
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from juno_rucio_policy.tokens import with_token
from tests.conftest import CHECKOUT, JUNO_DCS, Grid, run
from tests.integration.tansu import close_quietly, tansu_broker

CA_DIR = CHECKOUT / "var" / "pki" / "certificates"


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _consume(settings: Any, topic: str, expected: int, timeout: float = 90) -> list[Any]:
    """Every record of `topic` from the start, once `expected` of them are there (or the time is up)."""
    consumer = settings.consumer(topic, group_id=None)
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        time.sleep(1)  # anything beyond `expected` would be a bug: give it a moment to show
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(batch)
    finally:
        close_quietly(consumer)
    return records


def _stat_and_adler32(ctx: Any, url: str, token: str) -> tuple[int, str] | None:
    """Size and adler32 at the SE, asked with `token` (root:// carries it in the URL)."""
    import gfal2

    url = with_token(url, token)
    try:
        size = int(ctx.stat(url).st_size)
    except gfal2.GError as exc:
        if exc.code != errno.ENOENT:
            raise
        return None
    return size, str(ctx.checksum(url, "adler32")).lower()


def test_spade_sim_writes_to_ihep_disk_and_announces_every_file(grid: Grid, monkeypatch: pytest.MonkeyPatch) -> None:
    from juno_dcs.grid.home import GridHome
    from juno_dcs.grid.kafka import ensure_topics, kafka_settings
    from juno_dcs.ingest import message
    from juno_dcs.ingest.spade_sim import SimPlan, deliveries

    home = GridHome(grid.home)
    state = home.load_state()
    stream, topic = _unique("t"), _unique("spade.test.")
    ensure_topics(home, state, {topic: 3})
    options = {"files": 20, "days": 2, "size": 4096, "first_run": 4321, "seed": 11,
               "faults": {"duplicate": 0.1, "malformed": 0.1, "wrong_checksum": 0.1, "missing_file": 0.1}}
    proc = grid.juno_dcs(
        "spade-sim", "--files", "20", "--days", "2", "--start-date", "2026-11-25", "--size", "4KiB",
        "--stream", stream, "--run", "4321", "--seed", "11", "--topic", topic, "--rate", "50",
        "--duplicate", "0.1", "--malformed", "0.1", "--wrong-checksum", "0.1", "--missing-file", "0.1",
        "--json", "--no-progress",
    )
    summary = json.loads(proc.stdout)
    assert summary["published"] == 22
    assert summary["files_written"] + summary["files_present"] == 18
    assert summary["by_fault"] == {"duplicate": 2, "malformed": 2, "wrong_checksum": 2, "missing_file": 2}
    assert summary["blocks"] == [f"block.20261125.{stream}", f"block.20261126.{stream}"]
    assert summary["elapsed_s"] >= 21 / 50  # paced: 22 messages at 50 a second

    davs = str(grid.status()["storage"]["IHEP_DISK"])  # type: ignore[index]
    prefix = "root://" + davs.split("://", 1)[1]  # spade-sim writes over the XRootD protocol
    plan = SimPlan.model_validate({**options, "start": dt.date(2026, 11, 25), "streams": (stream,),
                                   "location_prefix": prefix})
    planned = {d.name: d for d in deliveries(plan)}  # the same options give the same deliveries

    kafka = kafka_settings(state)
    # kafka-python refuses a max_poll_interval_ms other than session_timeout_ms for a 0.9 broker
    kafka = kafka.model_copy(update={"max_poll_interval_ms": kafka.session_timeout_ms})
    records = _consume(kafka, topic, expected=22)
    assert len(records) == 22
    assert sorted({r.key for r in records}) == sorted(name.encode() for name in planned)

    monkeypatch.setenv("X509_CERT_DIR", str(CA_DIR))
    monkeypatch.setenv("SSL_CERT_DIR", str(CA_DIR))
    monkeypatch.setenv("SSL_CERT_FILE", str(CA_DIR / "ca.pem"))
    import gfal2

    ctx = gfal2.creat_context()
    ctx.set_opt_boolean("HTTP PLUGIN", "RETRIEVE_BEARER_TOKEN", False)
    token = grid.token("root", "localhost", "storage.read:/raw")
    seen: dict[str, int] = {}
    for record in records:
        d = planned[record.key.decode()]
        seen[d.name] = seen.get(d.name, 0) + 1
        assert record.value == d.message
        parsed = message.parse(record.value)
        if d.fault == "malformed":
            assert isinstance(parsed, message.Rejection), parsed
            continue
        assert isinstance(parsed, message.FileArrived), parsed
        assert parsed.location == d.location
        assert parsed.block == f"block.{d.received_at:%Y%m%d}.{stream}"
        stored = _stat_and_adler32(ctx, parsed.location, token)
        if d.fault == "missing_file":
            assert stored is None, f"{parsed.location} was announced as never written"
            continue
        assert stored is not None, f"{parsed.location} is missing"
        size, adler32 = stored
        assert size == parsed.size == 4096
        if d.fault == "wrong_checksum":
            assert adler32 != parsed.adler32
            assert adler32 == d.adler32
        else:
            assert adler32 == parsed.adler32
    assert sorted(seen.values()) == [1] * 18 + [2] * 2
    for d in planned.values():
        if d.fault == "malformed":  # its file was written all the same
            assert _stat_and_adler32(ctx, d.location, token) == (4096, d.adler32)

    # replaying the same plan writes nothing new: every file is already there with the same content
    again = json.loads(grid.juno_dcs(
        "spade-sim", "--files", "20", "--days", "2", "--start-date", "2026-11-25", "--size", "4KiB",
        "--stream", stream, "--run", "4321", "--seed", "11", "--topic", topic, "--rate", "0",
        "--duplicate", "0.1", "--malformed", "0.1", "--wrong-checksum", "0.1", "--missing-file", "0.1",
        "--json", "--no-progress").stdout)
    assert (again["files_written"], again["files_present"], again["bytes"]) == (0, 18, 0)


def test_spade_sim_publishes_to_any_kafka_without_a_grid(tmp_path: Path) -> None:
    from juno_dcs.ingest import message

    topic = _unique("spade.files.")
    with tansu_broker() as broker:
        broker.create_topics({topic: 3})
        proc = run([JUNO_DCS, "spade-sim", "--home", str(tmp_path / "no-grid"), "--bootstrap", broker.bootstrap,
                    "--location-prefix", "davs://eos.ihep.example:443/eos/juno/", "--no-files", "--files", "300",
                    "--size", "5GB", "--rate", "0", "--topic", topic, "--malformed", "0.07", "--duplicate", "0.05",
                    "--json"])
        summary = json.loads(proc.stdout)
        assert (summary["published"], summary["files_written"], summary["bytes"]) == (315, 0, 0)
        assert summary["malformed_kinds"] == {kind: 3 for kind in summary["malformed_kinds"]}
        assert len(summary["malformed_kinds"]) == 7
        records = _consume(broker.settings, topic, expected=315)
    assert len(records) == 315
    parsed = [message.parse(r.value) for r in records]
    good = [p for p in parsed if isinstance(p, message.FileArrived)]
    assert len({p.name for p in good}) == 300 - 21
    assert len(parsed) - len(good) >= 21  # the malformed ones, some of them twice
    assert all(p.size == 5 * 10**9 and p.location.startswith("davs://eos.ihep.example:443/eos/juno/raw/")
               for p in good)
