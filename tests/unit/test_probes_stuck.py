"""`juno-probe stuck-rules`: the reasons in words from canned facts (what the Rucio client and the transfer
service answered), and the gathering from a fake Rucio client."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rucio.common.exception import RequestNotFound

from juno_probes import stuck
from juno_probes.nagios import Status
from juno_probes.stuck import LockFacts, QuotaFacts, RseFacts, RuleFacts

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def lock(**kw: Any) -> LockFacts:
    base: dict[str, Any] = {"scope": "raw", "name": "f1", "rse": "JINR_DISK", "state": "STUCK",
                            "replicas": {"IHEP_DISK": "AVAILABLE", "JINR_DISK": "COPYING"}}
    return LockFacts(**{**base, **kw})


def rule(*locks: LockFacts, **kw: Any) -> RuleFacts:
    base: dict[str, Any] = {
        "rule_id": "r1", "account": "alice", "did": "raw:block", "rse_expression": "JINR_DISK", "state": "STUCK",
        "error": None, "created_at": NOW - timedelta(hours=2), "locks_ok": 0, "locks_replicating": 0,
        "locks_stuck": len(locks), "locks": locks,
        "rses": {"IHEP_DISK": RseFacts("IHEP_DISK"), "JINR_DISK": RseFacts("JINR_DISK")},
        "quotas": {"JINR_DISK": QuotaFacts("JINR_DISK", 1e12, 10)},
    }
    return RuleFacts(**{**base, **kw})


def kinds_and_texts(facts: RuleFacts) -> list[tuple[str, str]]:
    return [(r.kind, r.text) for r in stuck.reasons(facts)]


def test_no_source_replica() -> None:
    facts = rule(lock(replicas={"JINR_DISK": "COPYING"}, request_state="NO_SOURCES"),
                 error="RequestErrMsg.NO_SOURCES:RequestState.NO_SOURCES")
    assert kinds_and_texts(facts) == [
        ("no_source", "no source replica for 1 file (the transfer request says NO_SOURCES)")]


def test_source_rse_blocked_for_reading() -> None:
    facts = rule(lock(request_state="NO_SOURCES"), error="RequestErrMsg.NO_SOURCES:RequestState.NO_SOURCES",
                 rses={"IHEP_DISK": RseFacts("IHEP_DISK", read=False), "JINR_DISK": RseFacts("JINR_DISK")})
    assert kinds_and_texts(facts) == [
        ("no_source", "no source replica for 1 file (the transfer request says NO_SOURCES)"),
        ("rse_unavailable", "source RSE IHEP_DISK is not available for reading (holds the only replica of 1 file)"),
    ]


def test_destination_blocked_for_writing() -> None:
    facts = rule(lock(state="REPLICATING", request_state="QUEUED"),
                 rses={"IHEP_DISK": RseFacts("IHEP_DISK"), "JINR_DISK": RseFacts("JINR_DISK", write=False)})
    assert kinds_and_texts(facts) == [("rse_unavailable", "RSE JINR_DISK is not available for writing")]
    only_error = rule(lock(state="REPLICATING"), error="RSEWriteBlocked: RSE excluded")
    assert stuck.reasons(only_error)[0].kind == "rse_unavailable"


def test_quota_exceeded() -> None:
    facts = rule(lock(state="REPLICATING", request_state="SUBMITTED"),
                 quotas={"JINR_DISK": QuotaFacts("JINR_DISK", 0, 1000)})
    assert kinds_and_texts(facts) == [
        ("quota", "quota exceeded at JINR_DISK: account alice uses 1000 bytes of its limit of 0")]
    no_limit = rule(lock(), quotas={"JINR_DISK": QuotaFacts("JINR_DISK", None, 0)})
    assert "has no limit set there" in stuck.reasons(no_limit)[0].text
    from_rucio = rule(lock(), error="InsufficientAccountLimit: There is not enough quota left")
    assert stuck.reasons(from_rucio)[0].text.startswith("quota exceeded (Rucio: InsufficientAccountLimit")


def test_transfer_errors_with_the_last_message() -> None:
    facts = rule(lock(name="f1", request_state="FAILED", retries=2, request_error="first"),
                 lock(name="f2", request_state="SUBMITTED", job_state="FAILED", retries=1,
                      job_reason="TRANSFER [2] source does not exist"),
                 error="TRANSFER [2] source does not exist")
    assert kinds_and_texts(facts) == [
        ("transfer_errors", "transfer errors for 2 files (3 retries), last: TRANSFER [2] source does not exist")]


def test_waiting_for_tape() -> None:
    facts = rule(lock(state="REPLICATING", rse="IHEP_TAPE", job_state="ARCHIVING"),
                 lock(state="REPLICATING", name="f2", request_source="CNAF_TAPE", job_state="STAGING"),
                 state="REPLICATING")
    assert kinds_and_texts(facts) == [("tape", "waiting for tape: 1 file staging from CNAF_TAPE"),
                                      ("tape", "waiting for tape: 1 file archiving to IHEP_TAPE")]


def test_queued_and_unknown() -> None:
    facts = rule(lock(state="REPLICATING", request_state="QUEUED"), lock(state="REPLICATING", name="f2"),
                 state="REPLICATING")
    assert kinds_and_texts(facts) == [("queued", "transfers waiting: 1 QUEUED, 1 no request")]
    odd = rule(error="Something else entirely")
    assert kinds_and_texts(odd) == [("rucio_error", "Rucio says: Something else entirely")]
    assert kinds_and_texts(rule()) == [("unknown", "no reason found")]


def test_summary_and_evaluate() -> None:
    facts = rule(lock(replicas={}, request_state="NO_SOURCES"))
    summary = stuck.summary(facts, NOW)
    assert summary["age_s"] == 7200
    assert summary["reasons"] == [{"kind": "no_source", "text": "no source replica for 1 file (the transfer request "
                                                                 "says NO_SOURCES)"}]
    slow = {**stuck.summary(replace(facts, rule_id="r2", state="REPLICATING"), NOW), "did": "raw:other"}
    result = stuck.evaluate([summary, slow], 3600, warning=1, critical=10)
    assert result.status == Status.WARNING
    assert result.message.startswith("1 STUCK, 1 REPLICATING for more than 3600 s: raw:block -> JINR_DISK (STUCK): "
                                     "no source replica")
    assert stuck.evaluate([], 3600, 1, 10).status == Status.OK
    assert stuck.evaluate([summary] * 10, 3600, 1, 10).status == Status.CRITICAL
    assert "and 5 more" in stuck.evaluate([summary] * 10, 3600, 1, 10).message


class FakeRucio:
    """Answers as Rucio 41's client does (requests: one dict or RequestNotFound)."""

    def __init__(self) -> None:
        created = datetime(2026, 12, 1, 9, tzinfo=UTC).replace(tzinfo=None)  # naive UTC, as the client gives it
        self.rules: dict[str, list[dict[str, Any]]] = {
            "S": [{"id": "r1", "account": "alice", "scope": "raw", "name": "b1", "rse_expression": "JINR_DISK",
                   "state": "STUCK", "error": "RequestErrMsg.NO_SOURCES:RequestState.NO_SOURCES",
                   "created_at": created, "locks_ok_cnt": 0, "locks_replicating_cnt": 0, "locks_stuck_cnt": 1}],
            "R": [{"id": "r2", "account": "alice", "scope": "raw", "name": "b2", "rse_expression": "JINR_DISK",
                   "state": "REPLICATING", "error": None, "created_at": created, "locks_ok_cnt": 0,
                   "locks_replicating_cnt": 1, "locks_stuck_cnt": 0},
                  {"id": "r3", "account": "bob", "scope": "raw", "name": "b3", "rse_expression": "JINR_DISK",
                   "state": "REPLICATING", "error": None, "created_at": created + timedelta(hours=2, minutes=59),
                   "locks_ok_cnt": 0, "locks_replicating_cnt": 1, "locks_stuck_cnt": 0}],
        }

    def list_replication_rules(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return self.rules[filters["state"]]

    def list_replica_locks(self, rule_id: str) -> list[dict[str, str]]:
        state = "STUCK" if rule_id == "r1" else "REPLICATING"
        return [{"scope": "raw", "name": f"f{rule_id}", "rse": "JINR_DISK", "state": state},
                {"scope": "raw", "name": "done", "rse": "JINR_DISK", "state": "OK"}]

    def list_request_by_did(self, name: str, rse: str, scope: str) -> dict[str, Any]:
        if name == "fr1":
            raise RequestNotFound("moved to the history")
        return {"state": "RequestState.SUBMITTED", "external_id": "job-1", "retry_count": 0, "source_rse": "IHEP_DISK"}

    def list_request_history_by_did(self, name: str, rse: str, scope: str) -> dict[str, Any]:
        return {"state": "RequestState.NO_SOURCES", "err_msg": None, "external_id": None, "retry_count": 0}

    def list_replicas(self, dids: list[dict[str, str]], all_states: bool) -> list[dict[str, Any]]:
        return [{"states": {"IHEP_DISK": "AVAILABLE", "JINR_DISK": "COPYING"}}]

    def get_rse(self, rse: str) -> dict[str, Any]:
        return {"rse_type": "RSEType.DISK", "availability_read": rse != "IHEP_DISK", "availability_write": True}

    def list_account_attributes(self, account: str) -> list[list[dict[str, Any]]]:
        return [[{"key": "admin", "value": account == "root"}]]

    def get_local_account_limits(self, account: str) -> dict[str, int]:
        return {"JINR_DISK": 10**12}

    def get_local_account_usage(self, account: str) -> list[dict[str, Any]]:
        return [{"rse": "JINR_DISK", "bytes": 5}]


def test_gather_through_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stuck, "fts_file", lambda url, job, timeout=10.0, fts_auth=None:
                        ("FAILED", "TRANSFER [110] timeout") if job else (None, None))
    rules, complete = stuck.gather(FakeRucio(), 3600, "http://fts", now=lambda: NOW)
    assert complete
    assert [r["rule_id"] for r in rules] == ["r1", "r2"]  # r3 is younger than the threshold
    r1, r2 = rules
    assert [x["kind"] for x in r1["reasons"]] == ["no_source", "rse_unavailable"]
    assert "source RSE IHEP_DISK is not available for reading" in r1["reasons"][1]["text"]
    assert r2["reasons"][-1] == {"kind": "transfer_errors",
                                 "text": "transfer errors for 1 file (0 retries), last: TRANSFER [110] timeout"}
    assert r1["created_at"] == "2026-12-01T09:00:00+00:00"


class DeletedAccountRucio(FakeRucio):
    """Rucio keeps a deleted account's rules (a deleted rule lingers until its expiry) while every account call
    raises AccountNotFound."""

    def __init__(self) -> None:
        super().__init__()
        expires = datetime(2026, 12, 1, 13, 30, tzinfo=UTC).replace(tzinfo=None)  # naive UTC, as the client gives it
        self.rules["S"][0].update(account="gone", expires_at=expires)
        self.rules["R"] = []

    def list_account_attributes(self, account: str) -> list[list[dict[str, Any]]]:
        from rucio.common.exception import AccountNotFound

        if account == "gone":
            raise AccountNotFound(f"Account ID '{account}' does not exist")
        return super().list_account_attributes(account)


def test_a_rule_of_a_deleted_account_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stuck, "fts_file", lambda url, job, timeout=10.0, fts_auth=None: (None, None))
    rules, complete = stuck.gather(DeletedAccountRucio(), 3600, "http://fts", now=lambda: NOW)
    assert complete
    (only,) = rules
    assert only["reasons"][0] == {"kind": "account", "text": "the rule's account gone does not exist any more; "
                                                             "the rule expires at 2026-12-01 13:30 UTC"}
    assert [r["kind"] for r in only["reasons"]][1:] == ["no_source", "rse_unavailable"]


class SecondTargetRucio(FakeRucio):
    """alice's second rule targets CNAF_DISK, an RSE the first rule never touched, where she has no limit."""

    def list_replica_locks(self, rule_id: str) -> list[dict[str, str]]:
        locks = super().list_replica_locks(rule_id)
        return [{**lk, "rse": "CNAF_DISK"} for lk in locks] if rule_id == "r2" else locks

    def list_replicas(self, dids: list[dict[str, str]], all_states: bool) -> list[dict[str, Any]]:
        if dids[0]["name"] == "fr2":
            return [{"states": {"IHEP_DISK": "AVAILABLE", "CNAF_DISK": "COPYING"}}]
        return super().list_replicas(dids, all_states)


def test_the_quota_is_checked_at_every_rules_targets_not_only_the_first_rules(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stuck, "fts_file", lambda url, job, timeout=10.0, fts_auth=None: (None, None))
    rules, _ = stuck.gather(SecondTargetRucio(), 3600, "http://fts", now=lambda: NOW)
    r2 = next(r for r in rules if r["rule_id"] == "r2")
    assert {"kind": "quota", "text": "quota exceeded at CNAF_DISK: account alice has no limit set there "
                                     "(nothing may be written)"} in r2["reasons"]


def test_requests_left_unsubmitted_while_the_transfer_service_is_idle_blame_the_conveyor() -> None:
    waiting = [lock(name=f"f{i}", state="REPLICATING", request_state="QUEUED", request_age_s=age)
               for i, age in enumerate((400.0, 900.0))]
    facts = rule(*waiting, state="REPLICATING", locks_stuck=0, locks_replicating=2, transfer_service_idle=True)
    assert kinds_and_texts(facts) == [(
        "not_submitted", "2 files wait in Rucio unsubmitted for up to 15 min while the transfer service has nothing "
        "queued or active: Rucio's conveyor submits nothing (is rucio-conveyor-submitter running? `juno-dcs status`)")]


@pytest.mark.parametrize(("idle", "age"), [(False, 900.0), (None, 900.0), (True, 60.0)])
def test_queued_requests_are_only_waiting_when_the_service_is_busy_unknown_or_they_are_young(
        idle: bool | None, age: float) -> None:
    facts = rule(lock(state="REPLICATING", request_state="QUEUED", request_age_s=age), state="REPLICATING",
                 locks_stuck=0, locks_replicating=1, transfer_service_idle=idle)
    assert kinds_and_texts(facts) == [("queued", "transfers waiting: 1 QUEUED")]



class ConveyorDownRucio(FakeRucio):
    """No STUCK rule; r2 old, r5 ten minutes old with its request QUEUED for ten minutes (nobody submits it),
    r6 one minute old with its request just queued."""

    def __init__(self, at: datetime) -> None:
        super().__init__()
        naive = at.replace(tzinfo=None)
        self.rules["S"] = []
        self.rules["R"] = [
            *self.rules["R"][:1],
            {**self.rules["R"][0], "id": "r5", "name": "b5", "created_at": naive - timedelta(minutes=10)},
            {**self.rules["R"][0], "id": "r6", "name": "b6", "created_at": naive - timedelta(minutes=1)},
        ]
        self.queued_at = {"fr5": naive - timedelta(minutes=10), "fr6": naive - timedelta(minutes=1)}

    def list_request_by_did(self, name: str, rse: str, scope: str) -> dict[str, Any]:
        if name in self.queued_at:
            return {"state": "RequestState.QUEUED", "external_id": None, "retry_count": 0, "source_rse": None,
                    "created_at": self.queued_at[name]}
        return super().list_request_by_did(name, rse, scope)


@pytest.mark.parametrize("idle", [True, False])
def test_a_young_rule_left_unsubmitted_is_reported_within_minutes_while_the_transfer_service_is_idle(
        monkeypatch: pytest.MonkeyPatch, idle: bool) -> None:
    now = datetime.now(UTC)
    monkeypatch.setattr(stuck, "fts_file", lambda url, job, timeout=10.0, fts_auth=None: (None, None))
    monkeypatch.setattr(stuck, "transfer_service_idle", lambda url, timeout=10.0, fts_auth=None: idle)
    rules, complete = stuck.gather(ConveyorDownRucio(now), 3600, "http://fts", now=lambda: now)
    assert complete
    if idle:  # r5 waited 10 min > 300 s; r6 is one minute old; r2 is old enough to be examined anyway
        assert [r["rule_id"] for r in rules] == ["r2", "r5"]
        assert "not_submitted" in [x["kind"] for x in rules[1]["reasons"]]
    else:  # a busy transfer service: young rules wait their turn
        assert [r["rule_id"] for r in rules] == ["r2"]
