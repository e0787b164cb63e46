"""The SPADE simulator's logic: plan -> deliveries (names, times, contents, faults, messages), pacing, the
publish/write pipeline, and its command line's errors. No Kafka, no storage."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import zlib
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from juno_dcs.ingest import message
from juno_dcs.ingest.spade_cli import spade_sim
from juno_dcs.ingest.spade_sim import (
    CHUNK,
    DEFAULT_MB_S,
    MALFORMED_KINDS,
    Delivery,
    Faults,
    Pacer,
    Publisher,
    SimError,
    SimPlan,
    content_adler32,
    content_chunks,
    deliveries,
    malformed_message,
    simulate,
)
from juno_rucio_policy import naming
from juno_rucio_policy.paths import path_for

PREFIX = "davs://localhost:1094/"
START = dt.date(2026, 11, 25)


def plan(**overrides: Any) -> SimPlan:
    values: dict[str, Any] = {"files": 40, "start": START, "size": 4096, "location_prefix": PREFIX}
    return SimPlan.model_validate({**values, **overrides})


def test_names_follow_juno_naming_and_the_plans_runs_and_streams() -> None:
    got = list(deliveries(plan(files=30, streams=("physics", "calib"), first_run=1234, files_per_run=4)))
    assert len({d.name for d in got}) == 30
    for d in got:
        assert naming.problem("raw", d.name, collection=False) is None
        fields = naming.parse("raw", d.name, collection=False).fields
        assert (int(fields["run"]), fields["stream"], int(fields["seq"])) == (d.run, d.stream, d.seq)
        assert fields["date"] == f"{d.received_at:%Y%m%d}"
        assert d.location == PREFIX + path_for("raw", d.name)
    assert [d.stream for d in got[:4]] == ["physics", "calib", "physics", "calib"]
    assert len({d.spade_id for d in got}) == 30
    others = {d.spade_id for d in deliveries(plan(files=30, streams=("physics", "test"), first_run=1234,
                                                  files_per_run=4))}
    assert {d.spade_id for d in got if d.stream == "calib"}.isdisjoint(others)
    physics = [(d.run, d.seq) for d in got if d.stream == "physics"]
    assert physics[:6] == [(1234, 1), (1234, 2), (1234, 3), (1234, 4), (1235, 1), (1235, 2)]


def test_receiving_times_spread_evenly_over_the_days() -> None:
    got = list(deliveries(plan(files=300, days=3)))
    times = [d.received_at for d in got]
    assert times[0] == dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    assert times[-1] < dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    gaps = {round((b - a).total_seconds()) for a, b in itertools.pairwise(times)}
    assert gaps == {864}  # 3 days / 300 files
    assert Counter(t.date() for t in times) == {START: 100, dt.date(2026, 11, 26): 100, dt.date(2026, 11, 27): 100}
    assert {d.block for d in got} == {f"block.2026112{i}.physics" for i in (5, 6, 7)}


def test_faults_come_in_the_requested_fractions_and_are_reproducible() -> None:
    faults = {"duplicate": 0.1, "malformed": 0.14, "wrong_checksum": 0.05, "missing_file": 0.2}
    p = plan(files=200, faults=faults, seed=42)
    got = list(deliveries(p))
    counts = Counter(d.fault for d in got)
    assert counts == {"malformed": 28, "wrong_checksum": 10, "missing_file": 40, None: 122}
    assert sum(d.repeat_after is not None for d in got) == 20
    assert all(1 <= d.repeat_after <= 10 for d in got if d.repeat_after is not None)
    assert Counter(d.malformed for d in got if d.malformed) == dict.fromkeys(MALFORMED_KINDS, 4)
    assert [d.message for d in deliveries(p)] == [d.message for d in got]  # same seed, same messages
    other = [d.fault for d in deliveries(plan(files=200, faults=faults, seed=43))]
    assert other != [d.fault for d in got]


def test_good_messages_parse_into_what_was_planned() -> None:
    p = plan(files=50, faults={"wrong_checksum": 0.2, "missing_file": 0.2, "duplicate": 0.2})
    for d in deliveries(p):
        parsed = message.parse(d.message)
        assert isinstance(parsed, message.FileArrived), parsed
        assert (parsed.name, parsed.size, parsed.location, parsed.spade_id) == (d.name, 4096, d.location, d.spade_id)
        assert parsed.received_at == d.received_at
        assert parsed.block == d.block
        assert d.content_seed is not None
        assert d.adler32 == content_adler32(d.content_seed, d.size)
        assert (parsed.adler32 != d.adler32) == (d.fault == "wrong_checksum")
        assert d.written == (d.fault != "missing_file")


@pytest.mark.parametrize(
    ("kind", "field", "reason"),
    [
        ("not_json", None, "not JSON"),
        ("missing_field", "adler32", "Field required"),
        ("wrong_type", "size", "valid integer"),
        ("negative_size", "size", "greater than or equal to 0"),
        ("bad_checksum_format", "adler32", "should match pattern"),
        ("path_traversal", "name", "is not a JUNO raw file"),
        ("unknown_version", "version", "unknown schema version 2"),
    ],
)
def test_every_kind_of_malformed_message_is_rejected_with_a_reason(kind: str, field: str | None, reason: str) -> None:
    good = next(d for d in deliveries(plan(files=1)))
    arrived = message.parse(good.message)
    assert isinstance(arrived, message.FileArrived)
    rejected = message.parse(malformed_message(kind, arrived))
    assert isinstance(rejected, message.Rejection), rejected
    assert rejected.field == field
    assert reason in rejected.reason
    if kind == "path_traversal":
        assert "/../" in malformed_message(kind, arrived).decode()


def test_the_malformed_messages_of_a_plan_are_all_rejected() -> None:
    got = [d for d in deliveries(plan(files=70, faults={"malformed": 0.5})) if d.malformed]
    assert len(got) == 35
    assert {d.malformed for d in got} == set(MALFORMED_KINDS)
    for d in got:
        assert isinstance(message.parse(d.message), message.Rejection)
        assert d.written  # SPADE wrote the file; only its message is broken


def test_an_unknown_malformed_kind_is_an_error() -> None:
    arrived = message.parse(next(deliveries(plan(files=1))).message)
    assert isinstance(arrived, message.FileArrived)
    with pytest.raises(ValueError, match="unknown kind"):
        malformed_message("gibberish", arrived)


def test_content_is_reproducible_and_its_adler32_is_zlibs() -> None:
    size = CHUNK + 5
    data = b"".join(content_chunks(7, size))
    assert len(data) == size
    assert data == b"".join(content_chunks(7, size))
    assert data != b"".join(content_chunks(8, size))
    assert content_adler32(7, size) == f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def test_without_files_nothing_is_to_be_written_and_the_checksums_are_still_well_formed() -> None:
    got = list(deliveries(plan(files=10, content=False, size=5 * 10**9)))
    assert all(d.content_seed is None and not d.written for d in got)
    assert all(isinstance(message.parse(d.message), message.FileArrived) for d in got)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"streams": ("Physics",)}, "stream 'Physics'"),
        ({"streams": ("physics", "physics")}, "given twice"),
        ({"faults": {"malformed": 0.6, "missing_file": 0.5}}, "exceed 1"),
        ({"first_run": 999999, "files": 101}, "past 999999"),
        ({"rate": 5, "mbps": 1}, "not both"),
        ({"start": dt.date(2099, 12, 31), "days": 2}, "leave 2000-2099"),
        ({"location_prefix": "ftp://host/"}, "not a davs://"),
        ({"size": 0}, "greater than or equal to 1"),
    ],
)
def test_plans_that_do_not_hold_together_are_refused(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        plan(**overrides)


def test_rates() -> None:
    assert plan(rate=12).files_per_second == 12
    assert plan(rate=0).files_per_second is None
    assert plan(mbps=4, size=10**6).files_per_second == 4
    assert plan(size=10**5).files_per_second == pytest.approx(DEFAULT_MB_S * 10)
    assert plan(location_prefix="davs://h:1/eos").location_prefix == "davs://h:1/eos/"
    assert Faults(duplicate=0.25).counts(10) == {"duplicate": 2, "malformed": 0, "wrong_checksum": 0,
                                                 "missing_file": 0}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_spaces_calls_and_catches_up_by_at_most_a_second() -> None:
    clock = FakeClock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)
    for _ in range(11):
        pacer.wait()
    assert clock.now == pytest.approx(101.0)
    clock.now += 60  # a long stall (slow writes)
    for _ in range(10):
        pacer.wait()  # one second's worth goes out at once
    assert clock.now == pytest.approx(161.0)
    pacer.wait()
    assert clock.now == pytest.approx(161.0)  # the catch-up allowance is spent: back to 1/10 s
    pacer.wait()
    assert clock.now == pytest.approx(161.1)
    unlimited = Pacer(None, clock=clock, sleep=clock.sleep)
    before = len(clock.slept)
    for _ in range(100):
        unlimited.wait()
    assert len(clock.slept) == before


def test_simulate_writes_then_publishes_in_plan_order_with_duplicates_again_later() -> None:
    p = plan(files=60, faults={"duplicate": 0.1, "missing_file": 0.1, "malformed": 0.1})
    sent: list[tuple[bytes, bytes]] = []
    written: set[str] = set()

    def write(d: Delivery) -> int:
        written.add(d.name)
        return d.size

    def publish(key: bytes, value: bytes) -> None:
        name = key.decode()
        assert name in written or not next(d for d in planned if d.name == name).written
        sent.append((key, value))

    planned = list(deliveries(p))
    summary = simulate(p, publish, topic="t", write=write, threads=3)
    assert len(sent) == 66
    firsts = list(dict.fromkeys(sent))
    assert [k for k, _ in firsts] == [d.key for d in planned]
    for d in planned:
        positions = [i for i, kv in enumerate(sent) if kv == (d.key, d.message)]
        if d.repeat_after is None:
            assert len(positions) == 1
        else:
            assert len(positions) == 2
            assert positions[1] > positions[0]
    assert written == {d.name for d in planned if d.written}
    report = summary.as_dict()
    assert report["published"] == 66
    assert report["files_written"] == 54
    assert report["bytes"] == 54 * 4096
    assert report["by_fault"] == {"duplicate": 6, "malformed": 6, "wrong_checksum": 0, "missing_file": 6}
    assert report["first_received_at"] == "2026-11-25T00:00:00Z"
    assert report["blocks"] == ["block.20261125.physics"]


def test_a_file_already_there_is_counted_apart() -> None:
    summary = simulate(plan(files=5), lambda k, v: None, topic="t", write=lambda d: 0)
    assert (summary.files_written, summary.files_present, summary.published) == (0, 5, 5)


def test_a_write_error_stops_the_simulation_before_that_files_message() -> None:
    sent: list[bytes] = []

    def write(d: Delivery) -> int:
        if d.index == 7:
            raise SimError(f"could not write {d.location}")
        return d.size

    with pytest.raises(SimError, match="could not write"):
        simulate(plan(files=20), lambda k, v: sent.append(k), topic="t", write=write, threads=2)
    assert len(sent) == 7


def test_a_stop_request_ends_the_simulation_cleanly() -> None:
    stop = threading.Event()
    sent: list[bytes] = []
    written: list[str] = []

    def write(d: Delivery) -> int:
        written.append(d.name)
        return d.size

    def progress(d: Delivery) -> None:
        if d.index == 9:
            stop.set()

    summary = simulate(plan(files=100), lambda k, v: sent.append(k), topic="t", write=write, threads=2,
                       progress=progress, stop=stop)
    assert summary.stopped
    assert 10 <= summary.published == len(sent) < 20  # the files being written when asked are announced
    assert sorted(written) == sorted(k.decode() for k in sent)  # and no file is left unannounced
    assert summary.as_dict()["stopped"] is True


class FakeFuture:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def add_errback(self, callback: Any, *args: Any) -> None:
        if self.error is not None:
            callback(*args, self.error)


class FakeProducer:
    def __init__(self, fail_on: bytes | None = None) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail_on = fail_on
        self.flushed = self.closed = False

    def send(self, topic: str, key: bytes, value: bytes) -> FakeFuture:
        self.sent.append((topic, key, value))
        return FakeFuture(RuntimeError("broker said no") if key == self.fail_on else None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushed = True

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def test_publisher_sends_key_and_value_and_reports_failures_at_close() -> None:
    ok = FakeProducer()
    publisher = Publisher(ok, "spade.files", Pacer(None))
    publisher(b"RUN.a", b"{}")
    publisher.close()
    assert ok.sent == [("spade.files", b"RUN.a", b"{}")]
    assert ok.flushed
    assert ok.closed
    bad = FakeProducer(fail_on=b"RUN.b")
    publisher = Publisher(bad, "spade.files", Pacer(None))
    publisher(b"RUN.a", b"{}")
    publisher(b"RUN.b", b"{}")
    with pytest.raises(SimError, match=r"1 message\(s\) not published.*RUN.b: broker said no"):
        publisher.close()
    assert bad.closed


NO_GRID = ["--bootstrap", "127.0.0.1:9", "--location-prefix", PREFIX, "--no-files"]


@pytest.mark.parametrize(
    ("args", "option", "problem"),
    [
        (["--size", "1XB"], "'--size'", "unknown unit 'XB'"),
        (["--size", "0"], "'--size'", "greater than or equal to 1"),
        (["--files", "0"], "'--files'", "not in the range"),
        (["--rate", "-1"], "'--rate'", "not in the range"),
        (["--rate", "1", "--mbps", "2"], "'--rate' / '--mbps'", "not both"),
        (["--stream", "Physics"], "'--stream'", "lower-case letters"),
        (["--malformed", "0.6", "--missing-file", "0.5"], "'--malformed' / '--wrong-checksum'", "exceed 1"),
        (["--duplicate", "1.5"], "'--duplicate'", "not in the range"),
        (["--run", "999999", "--files", "200"], "'--run'", "past 999999"),
        (["--start-date", "2026-13-01"], "'--start-date'", "does not match the format"),
        (["--start-date", "2126-01-01"], "'--start-date'", "leave 2000-2099"),
        (["--api-version", "zero.nine"], "'--api-version'", "not a version"),
        (["--location-prefix", "ftp://x/"], "'--location-prefix'", "not a davs://"),
    ],
)
def test_bad_arguments_name_the_option(args: list[str], option: str, problem: str) -> None:
    result = CliRunner().invoke(spade_sim, [*NO_GRID, *args])
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert problem in result.output


def test_bad_bootstrap_names_the_option() -> None:
    result = CliRunner().invoke(spade_sim, ["--bootstrap", "nohost", "--location-prefix", PREFIX])
    assert result.exit_code == 2
    assert "'--bootstrap'" in result.output
    assert "not host:port" in result.output


def test_without_a_grid_the_error_says_what_to_give(tmp_path: Any) -> None:
    result = CliRunner().invoke(spade_sim, ["--home", str(tmp_path / "nogrid"), "--files", "3"])
    assert result.exit_code == 1
    assert "no grid here" in result.output
    assert "--bootstrap and --location-prefix" in result.output
