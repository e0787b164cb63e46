"""The probes' pure logic: thresholds, the TPC matrix with fake copies, and each service probe's evaluation of
canned answers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from juno_probes import services, tpc
from juno_probes.nagios import Result, Status, threshold, worst
from juno_probes.store import TpcAttempt

AT = datetime(2026, 12, 1, tzinfo=UTC)


def attempt(src: str, dst: str, mode: str = "pull", ok: bool = True, error: str | None = None) -> TpcAttempt:
    return TpcAttempt(src, dst, mode, ok, 0.5, 2.0 if ok else None, error, AT)


def test_threshold_and_worst() -> None:
    assert threshold(0.0, 0.01, 0.1) == Status.OK
    assert threshold(0.01, 0.01, 0.1) == Status.WARNING
    assert threshold(0.5, 0.01, 0.1) == Status.CRITICAL
    assert worst(Status.OK, Status.UNKNOWN, Status.WARNING) == Status.WARNING
    assert worst() == Status.OK
    assert Result(Status.OK, "fine", {"t": "1s"}).line("tpc") == "TPC OK - fine | t=1s"


def test_tpc_all_ok() -> None:
    result = tpc.evaluate([attempt("A", "B"), attempt("B", "A")], 0.01, 0.1)
    assert result.status == Status.OK
    assert result.message == "2 copies ok"
    assert result.perfdata["failed"] == "0"
    assert result.perfdata["mean_throughput"] == "2.00MB/s"


def test_tpc_a_dead_rse_is_named_once() -> None:
    rses = ["A", "B", "C"]
    attempts = [attempt(s, d, m, ok="C" not in (s, d), error="TRANSFER [111] Connection refused")
                for s in rses for d in rses if s != d for m in ("pull", "push")]
    result = tpc.evaluate(attempts, 0.01, 0.1)
    assert result.status == Status.CRITICAL
    assert result.message.startswith("8 of 12 copies failed: C: all 8 copies from and to it failed")
    assert "A->B" not in result.message


def test_tpc_a_failing_pair_and_mode_are_named() -> None:
    attempts = [attempt("A", "B", "pull"), attempt("A", "B", "push", False, "TRANSFER [5] checksum mismatch\nmore"),
                *[attempt("B", "A", m) for m in ("pull", "push")], *[attempt("A", "C", m) for m in ("pull", "push")],
                *[attempt("C", "A", m) for m in ("pull", "push")], *[attempt("B", "C", m) for m in ("pull", "push")],
                *[attempt("C", "B", m) for m in ("pull", "push")]]
    result = tpc.evaluate(attempts, 0.01, 0.5)
    assert result.status == Status.WARNING
    assert result.message == "1 of 12 copies failed: A->B (push): TRANSFER [5] checksum mismatch"


def test_tpc_nothing_attempted_is_unknown() -> None:
    assert tpc.evaluate([], 0.01, 0.1).status == Status.UNKNOWN


def test_run_matrix_with_fake_storage(tmp_path: Path) -> None:
    uploaded: list[str] = []
    deleted: list[str] = []
    copies: list[tpc.Copy] = []

    def upload(local: Path, url: str, adler: str, timeout: int) -> str | None:
        assert local.stat().st_size == 1000
        uploaded.append(url)
        return "refused" if url.startswith("davs://c") else None

    def copy(request: tpc.Copy) -> tuple[bool, float, str | None]:
        copies.append(request)
        return (request.mode != "push", 0.25, None if request.mode != "push" else "TRANSFER [1] no push")

    ends = [tpc.Endpoint("A", "davs://a:1/"), tpc.Endpoint("B", "davs://b:2/"), tpc.Endpoint("C", "davs://c:3/")]
    attempts = tpc.run_matrix(ends, ["pull", "push"], copy, upload, deleted.append, timeout=7, parallel=2,
                              size=1000, now=lambda: AT)
    assert len(attempts) == 12
    assert len(uploaded) == 3
    assert all(c.timeout == 7 and len(c.checksum) == 8 for c in copies)
    assert {c.source.split("/")[2] for c in copies} == {"a:1", "b:2"}  # nothing copied from where the upload failed
    from_c = [a for a in attempts if a.source == "C"]
    assert all(not a.ok and a.error and a.error.startswith("upload to C failed: refused") for a in from_c)
    assert [a.ok for a in attempts if a.source == "A" and a.destination == "B"] == [True, False]
    ok = [a for a in attempts if a.ok]
    assert all(a.throughput_mb_s == pytest.approx(1000 / 0.25 / 1e6) for a in ok)
    # every good copy, both uploaded sources and the three run directories are removed
    assert len(deleted) == len(ok) + 2 + 3
    assert sum(url.endswith("/") for url in deleted) == 3


def test_run_matrix_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown copy mode sideways"):
        tpc.run_matrix([], ["sideways"], lambda c: (True, 0, None), lambda *a: None, lambda u: None)


class FakeRucio:
    def list_rses(self) -> list[dict[str, str]]:
        return [{"rse": r} for r in ("B_DISK", "A_TAPE", "A_DISK")]

    def get_rse(self, rse: str) -> dict[str, object]:
        tpc_prio = {"read": 1, "third_party_copy_read": 1}
        return {"rse_type": rse.split("_")[1], "protocols": [
            {"scheme": "root", "hostname": "h", "port": 1, "prefix": "//", "domains": {"wan": {"read": 2}}},
            {"scheme": "davs", "hostname": "h", "port": 2, "prefix": "/", "domains": {"wan": tpc_prio}}]}


def test_endpoints_are_the_disk_rses_davs() -> None:
    found = tpc.endpoints(FakeRucio())
    assert found == [tpc.Endpoint("A_DISK", "davs://h:2/"), tpc.Endpoint("B_DISK", "davs://h:2/")]
    assert [e.rse for e in tpc.endpoints(FakeRucio(), ["A_TAPE"])] == ["A_TAPE"]
    with pytest.raises(ValueError, match="no such RSE with a third-party-copy protocol: X_DISK"):
        tpc.endpoints(FakeRucio(), ["X_DISK"])


# --- ingest-lag


def metrics(**kw: object) -> dict[str, object]:
    return {"instance": "vm:1", "state": "running", "updated_at": 1000.0, "lag_total": 0, "latency_p99_s": 1.0,
            "last_error": None, "_file": "vm-1.json", **kw}


def test_ingest_ok_and_thresholds() -> None:
    limits = services.IngestThresholds(lag_warning=10, lag_critical=100, latency_warning_s=5, latency_critical_s=50)
    assert services.evaluate_ingest([metrics()], 1001.0, limits).status == Status.OK
    warn = services.evaluate_ingest([metrics(lag_total=10)], 1001.0, limits)
    assert warn.status == Status.WARNING
    assert "lag 10 messages" in warn.message
    crit = services.evaluate_ingest([metrics(latency_p99_s=60.0)], 1001.0, limits)
    assert crit.status == Status.CRITICAL
    assert "latency p99 60.0 s" in crit.message
    assert crit.perfdata["latency_p99"] == "60.00s;5;50"


def test_ingest_states() -> None:
    limits = services.IngestThresholds()
    failed = services.evaluate_ingest([metrics(state="failed", last_error="Rucio said no")], 1001.0, limits)
    assert failed.status == Status.CRITICAL
    assert "vm:1 failed: Rucio said no" in failed.message
    waiting = services.evaluate_ingest([metrics(state="waiting for Kafka")], 1001.0, limits)
    assert waiting.status == Status.WARNING
    silent = services.evaluate_ingest([metrics()], 1500.0, limits)
    assert silent.status == Status.WARNING
    assert "silent for 500 s" in silent.message
    gone = services.evaluate_ingest([metrics(state="stopped")], 1001.0, limits)
    assert gone.status == Status.CRITICAL
    assert "no ingestor reported" in gone.message


def test_ingest_metrics_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"state": "running", "updated_at": 1}')
    (tmp_path / "b.json").write_text("{half")
    assert [m["_file"] for m in services.read_metrics(tmp_path)] == ["a.json"]
    with pytest.raises(ValueError, match="no such metrics directory"):
        services.read_metrics(tmp_path / "missing")


# --- transfer-queues


def link(**kw: object) -> dict[str, object]:
    return {"source_se": "davs://a:1", "dest_se": "davs://b:2", "active": 1, "queued": 0, "finished": 10,
            "failed": 0, **kw}


def test_queues() -> None:
    limits = services.QueueThresholds()
    ok = services.evaluate_queues({"links": [link()]}, limits)
    assert ok.status == Status.OK
    assert ok.perfdata == {"links": "1", "queued": "0", "active": "1", "finished": "10", "failed": "0"}
    bad = services.evaluate_queues({"links": [link(finished=4, failed=6)]}, limits)
    assert bad.status == Status.CRITICAL
    assert "davs://a:1->davs://b:2 60% of 10 failed" in bad.message
    few = services.evaluate_queues({"links": [link(finished=1, failed=2)]}, limits)
    assert few.status == Status.OK  # too few outcomes to judge
    stalled = services.evaluate_queues({"links": [link(active=0, finished=0, queued=3)]}, limits)
    assert stalled.status == Status.WARNING
    assert "3 queued, none active or done" in stalled.message
    assert services.evaluate_queues({"links": [link(queued=6000)]}, limits).status == Status.CRITICAL


# --- conditions


def test_conditions() -> None:
    good = [services.Answer("service", "u", True, 0.01, "ok"), services.Answer("squid-IHEP", "v", True, 0.02, "ok")]
    assert services.evaluate_conditions(good, 1, 5).status == Status.OK
    down = services.evaluate_conditions([*good, services.Answer("squid-CNAF", "http://x", False, 0.0, "HTTP 503")],
                                         1, 5)
    assert down.status == Status.CRITICAL
    assert down.message == "2 of 3 answer: squid-CNAF (http://x): HTTP 503"
    slow = services.evaluate_conditions([services.Answer("service", "u", True, 2.0, "ok")], 1, 5)
    assert slow.status == Status.WARNING
    assert services.evaluate_conditions([], 1, 5).status == Status.UNKNOWN


# --- dispatcher


def queue(name: str, pilots: int, **jobs: int) -> dict[str, object]:
    return {"queue": name, "site": name, "online": True, "jobs": jobs, "pilots": pilots}


def test_dispatcher() -> None:
    assert services.evaluate_dispatcher([queue("IHEP", 2, activated=5, running=3)]).status == Status.OK
    idle = services.evaluate_dispatcher([queue("IHEP", 0, activated=5), queue("CNAF", 1, activated=1)])
    assert idle.status == Status.WARNING
    assert idle.message.endswith("IHEP: 5 activated jobs, no pilots")
    lost = services.evaluate_dispatcher([queue("JINR", 0, running=2, holding=1)])
    assert lost.status == Status.CRITICAL
    assert "JINR: 3 leased jobs, no pilot heartbeat" in lost.message
    assert services.evaluate_dispatcher([queue("MSU", 0, activated=1)], min_jobs=2).status == Status.OK
