"""`juno-probe stuck-rules`: every STUCK rule and every REPLICATING rule older than a threshold, with the reason in
words. Rucio itself only keeps a terse `error` per rule; the reasons here are gathered through the Rucio client
(the rule, its locks, the requests and their history, the replicas, the account's limits and usage, the RSEs'
availability) and the transfer service's HTTP API (the job of each request), then classified by `reasons()`, a
pure function of those facts.

Reason kinds: `rse_unavailable`, `no_source`, `quota`, `transfer_errors`, `tape`, `queued`, `rucio_error`,
`unknown`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from requests.auth import AuthBase

from juno_probes.nagios import Result, Status, threshold

logger = logging.getLogger(__name__)

NO_SOURCE_STATES = {"NO_SOURCES", "ONLY_TAPE_SOURCES", "MISMATCH_SCHEME"}
# Rucio's request states before the conveyor has handed a request to the transfer service
UNSUBMITTED_STATES = {"QUEUED", "PREPARING", "WAITING"}
# how long requests may wait unsubmitted, with the transfer service idle, before the conveyor is blamed
UNSUBMITTED_AFTER_S = 300.0
FAILED_STATES = {"FAILED", "LOST", "SUBMISSION_FAILED"}


@dataclass(frozen=True)
class LockFacts:
    scope: str
    name: str
    rse: str
    state: str  # REPLICATING or STUCK
    request_state: str | None = None  # the current request, else the last one in the history
    request_error: str | None = None
    request_source: str | None = None
    retries: int = 0
    job_id: str | None = None
    job_state: str | None = None  # the transfer service's file state of the request's job
    job_reason: str | None = None
    replicas: dict[str, str] = field(default_factory=dict)  # rse -> replica state (AVAILABLE, COPYING, ...)
    request_age_s: float | None = None  # since the current request was made


@dataclass(frozen=True)
class RseFacts:
    name: str
    rse_type: str = "DISK"
    read: bool = True
    write: bool = True


@dataclass(frozen=True)
class QuotaFacts:
    rse: str
    limit: float | None  # bytes; None: no limit set (nothing may be written), inf: unlimited
    used: int


@dataclass(frozen=True)
class RuleFacts:
    rule_id: str
    account: str
    did: str
    rse_expression: str
    state: str
    error: str | None
    created_at: datetime
    locks_ok: int
    locks_replicating: int
    locks_stuck: int
    locks: tuple[LockFacts, ...] = ()
    rses: Mapping[str, RseFacts] = field(default_factory=dict)
    quotas: Mapping[str, QuotaFacts] = field(default_factory=dict)
    account_exists: bool = True
    expires_at: datetime | None = None
    # the transfer service has nothing queued or active on any link (None: it could not be asked)
    transfer_service_idle: bool | None = None
    unsubmitted_after_s: float = UNSUBMITTED_AFTER_S


@dataclass(frozen=True)
class Reason:
    kind: str
    text: str


def _files(n: int) -> str:
    return f"{n} file" + ("" if n == 1 else "s")


def reasons(facts: RuleFacts) -> list[Reason]:
    """Why the rule is not OK, most telling first."""
    found: list[Reason] = []
    targets = sorted({lock.rse for lock in facts.locks})
    error = facts.error or ""
    if not facts.account_exists:
        found.append(Reason("account", f"the rule's account {facts.account} does not exist any more"
                            + (f"; the rule expires at {facts.expires_at:%Y-%m-%d %H:%M} UTC" if facts.expires_at
                               else "")))
    # the target RSEs: blocked for writing, out of quota
    for rse in targets:
        info = facts.rses.get(rse)
        if info is not None and not info.write:
            found.append(Reason("rse_unavailable", f"RSE {rse} is not available for writing"))
    if "RSEWriteBlocked" in error and not any(r.kind == "rse_unavailable" for r in found):
        found.append(Reason("rse_unavailable", f"an RSE of {facts.rse_expression} is blocked for writing"))
    for rse in targets:
        quota = facts.quotas.get(rse)
        if quota is not None and quota.limit is not None and quota.used >= quota.limit:
            found.append(Reason("quota", f"quota exceeded at {rse}: account {facts.account} uses {quota.used} "
                                         f"bytes of its limit of {quota.limit:.0f}"))
        elif quota is not None and quota.limit is None:
            found.append(Reason("quota", f"quota exceeded at {rse}: account {facts.account} has no limit set there "
                                         "(nothing may be written)"))
    if "InsufficientAccountLimit" in error and not any(r.kind == "quota" for r in found):
        found.append(Reason("quota", f"quota exceeded (Rucio: {error.strip()[:200]})"))
    # the sources
    no_source = [lock for lock in facts.locks if lock.request_state in NO_SOURCE_STATES]
    blocked_sources: Counter[str] = Counter()
    unsourced = 0
    for lock in facts.locks:
        elsewhere = {rse: st for rse, st in lock.replicas.items() if rse != lock.rse and st == "AVAILABLE"}
        readable = [rse for rse in elsewhere if facts.rses.get(rse, RseFacts(rse)).read]
        if not elsewhere and lock.replicas.get(lock.rse) != "AVAILABLE":
            unsourced += 1
        elif elsewhere and not readable:
            blocked_sources.update(elsewhere.keys())
    if no_source or unsourced or "MissingSourceReplica" in error or "NO_SOURCES" in error:
        n = max(len(no_source), unsourced) or facts.locks_stuck
        found.append(Reason("no_source", f"no source replica for {_files(n)}" + (
            f" (the transfer request says {no_source[0].request_state})" if no_source else "")))
    for rse, n in sorted(blocked_sources.items()):
        found.append(Reason("rse_unavailable", f"source RSE {rse} is not available for reading "
                                               f"(holds the only replica of {_files(n)})"))
    # the transfers
    failed = [lock for lock in facts.locks if lock.request_state in FAILED_STATES or lock.job_state == "FAILED"]
    if failed:
        last = failed[-1]
        message = (last.job_reason or last.request_error or "no message").strip()
        found.append(Reason("transfer_errors", f"transfer errors for {_files(len(failed))} "
                                               f"({sum(lock.retries for lock in failed)} retries), last: {message}"))
    staging = Counter(lock.request_source or "tape" for lock in facts.locks if lock.job_state == "STAGING")
    archiving = Counter(lock.rse for lock in facts.locks if lock.job_state == "ARCHIVING")
    for rse, n in sorted(staging.items()):
        found.append(Reason("tape", f"waiting for tape: {_files(n)} staging from {rse}"))
    for rse, n in sorted(archiving.items()):
        found.append(Reason("tape", f"waiting for tape: {_files(n)} archiving to {rse}"))
    unsubmitted = [lock for lock in facts.locks if lock.state == "REPLICATING" and not lock.job_id
                   and lock.request_state in UNSUBMITTED_STATES
                   and (lock.request_age_s or 0.0) >= facts.unsubmitted_after_s]
    if unsubmitted and facts.transfer_service_idle:
        minutes = max(lock.request_age_s or 0.0 for lock in unsubmitted) / 60
        found.append(Reason("not_submitted", f"{_files(len(unsubmitted))} wait in Rucio unsubmitted for up to "
                            f"{minutes:.0f} min while the transfer service has nothing queued or active: Rucio's "
                            "conveyor submits nothing (is rucio-conveyor-submitter running? `juno-dcs status`)"))
    if not found:
        queued = Counter(lock.job_state or lock.request_state or "no request" for lock in facts.locks
                         if lock.state == "REPLICATING")
        if queued:
            found.append(Reason("queued", "transfers waiting: " + ", ".join(
                f"{n} {state}" for state, n in sorted(queued.items()))))
    if facts.error and not any(r.kind in ("no_source", "quota", "rse_unavailable") for r in found) \
            and not failed:
        found.append(Reason("rucio_error", f"Rucio says: {facts.error.strip()}"))
    return found or [Reason("unknown", "no reason found")]


def summary(facts: RuleFacts, now: datetime) -> dict[str, Any]:
    """One rule as it goes into `--json` and the monitoring database's `details`."""
    age = (now - facts.created_at).total_seconds()
    return {"rule_id": facts.rule_id, "account": facts.account, "did": facts.did,
            "rse_expression": facts.rse_expression, "state": facts.state, "error": facts.error,
            "created_at": facts.created_at.isoformat(), "age_s": round(age),
            "locks": {"ok": facts.locks_ok, "replicating": facts.locks_replicating, "stuck": facts.locks_stuck},
            "reasons": [asdict(r) for r in reasons(facts)]}


def evaluate(rules: Sequence[Mapping[str, Any]], older_than_s: float, warning: int, critical: int,
             examined_all: bool = True) -> Result:
    stuck = [r for r in rules if r["state"] == "STUCK"]
    slow = [r for r in rules if r["state"] != "STUCK"]
    perf = {"stuck": f"{len(stuck)};{warning};{critical};0", "replicating_long": str(len(slow))}
    status = threshold(len(rules), warning, critical) if rules else Status.OK
    if not rules:
        return Result(status, f"no STUCK rules, none REPLICATING for more than {older_than_s:.0f} s", perf)
    shown = "; ".join(f"{r['did']} -> {r['rse_expression']} ({r['state']}): "
                      + ", ".join(x["text"] for x in r["reasons"]) for r in rules[:5])
    more = f"; and {len(rules) - 5} more" if len(rules) > 5 else ""
    partly = "" if examined_all else " (not all rules examined)"
    return Result(status, f"{len(stuck)} STUCK, {len(slow)} REPLICATING for more than {older_than_s:.0f} s"
                          f"{partly}: {shown}{more}", perf)


# --- gathering the facts


def _as_list(answer: Any) -> list[dict[str, Any]]:
    """The request client answers one dict or an iterator of dicts, depending on the call."""
    if answer is None:
        return []
    if isinstance(answer, dict):
        return [answer]
    return [a for a in answer if isinstance(a, dict)]


def _requests_of(client: Any, scope: str, name: str, rse: str) -> list[dict[str, Any]]:
    from rucio.common.exception import RequestNotFound

    for call in (client.list_request_by_did, client.list_request_history_by_did):
        try:
            found = _as_list(call(name, rse, scope))
        except RequestNotFound:
            continue
        if found:
            return sorted(found, key=lambda r: str(r.get("updated_at") or r.get("created_at") or ""))
    return []


def fts_file(fts_url: str | None, job_id: str | None, timeout: float = 10.0,
             fts_auth: AuthBase | None = None) -> tuple[str | None, str | None]:
    """(file state, reason) of a single-file job at the transfer service; (None, None) if it cannot say."""
    if not fts_url or not job_id:
        return None, None
    try:
        reply = requests.get(f"{fts_url}/jobs/{job_id}/files", timeout=timeout, auth=fts_auth)
        if reply.status_code != 200:
            return None, None
        files = reply.json()
    except (requests.RequestException, ValueError):
        return None, None
    if not files:
        return None, None
    last = files[-1]
    return last.get("file_state"), (last.get("reason") or None)


def transfer_service_idle(fts_url: str | None, timeout: float = 10.0, fts_auth: AuthBase | None = None) -> bool | None:
    """True when no link of the transfer service has a queued or active transfer; None if it cannot say."""
    if not fts_url:
        return None
    try:
        reply = requests.get(f"{fts_url}/snapshot", timeout=timeout, auth=fts_auth)
        links = reply.json()["links"] if reply.status_code == 200 else None
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None
    if not isinstance(links, list):
        return None
    return all(int(link.get("active") or 0) == 0 and int(link.get("queued") or 0) == 0 for link in links)


def _age_s(value: Any, now: datetime) -> float | None:
    if not value:
        return None
    try:
        return (now - _naive_utc(value)).total_seconds()
    except ValueError:
        return None


def lock_facts(client: Any, lock: Mapping[str, Any], fts_url: str | None,
               now: datetime | None = None, fts_auth: AuthBase | None = None) -> LockFacts:
    scope, name, rse = lock["scope"], lock["name"], lock["rse"]
    reqs = _requests_of(client, scope, name, rse)
    last = reqs[-1] if reqs else {}
    job_state, job_reason = fts_file(fts_url, last.get("external_id"), fts_auth=fts_auth)
    replicas: dict[str, str] = {}
    for rep in client.list_replicas([{"scope": scope, "name": name}], all_states=True):
        replicas.update({str(k): str(v) for k, v in (rep.get("states") or {}).items()})
    state = last.get("state")
    return LockFacts(
        scope=scope, name=name, rse=rse, state=str(lock["state"]),
        request_state=None if state is None else str(state).rsplit(".", 1)[-1],
        request_error=last.get("err_msg") or None, request_source=last.get("source_rse"),
        retries=int(last.get("retry_count") or 0), job_id=last.get("external_id"), job_state=job_state,
        job_reason=job_reason, replicas=replicas,
        request_age_s=_age_s(last.get("created_at"), now or datetime.now(UTC)),
    )


def _naive_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def rule_facts(client: Any, rule: Mapping[str, Any], fts_url: str | None, max_locks: int,
               rse_cache: dict[str, RseFacts], quota_cache: dict[str, Quota | None],
               idle: bool | None = None, unsubmitted_after_s: float = UNSUBMITTED_AFTER_S,
               fts_auth: AuthBase | None = None) -> RuleFacts:
    locks = [lk for lk in client.list_replica_locks(rule["id"]) if lk["state"] != "OK"][:max_locks]
    lock_list = tuple(lock_facts(client, lk, fts_url, fts_auth=fts_auth) for lk in locks)
    for rse in {lk.rse for lk in lock_list} | {r for lk in lock_list for r in lk.replicas}:
        if rse not in rse_cache:
            info = client.get_rse(rse)
            rse_cache[rse] = RseFacts(rse, str(info["rse_type"]).rsplit(".", 1)[-1],
                                      bool(info["availability_read"]), bool(info["availability_write"]))
    account = str(rule["account"])
    if account not in quota_cache:
        quota_cache[account] = _quota(client, account)
    known = quota_cache[account]
    quotas = {} if _ignores_quota(rule) or known is None or known.unlimited else {
        rse: QuotaFacts(rse, None if rse not in known.limits else float(known.limits[rse]), known.usage.get(rse, 0))
        for rse in rse_cache}
    return RuleFacts(
        rule_id=str(rule["id"]), account=account, did=f"{rule['scope']}:{rule['name']}",
        rse_expression=str(rule["rse_expression"]), state=str(rule["state"]).rsplit(".", 1)[-1],
        error=rule.get("error"), created_at=_naive_utc(rule["created_at"]),
        locks_ok=int(rule.get("locks_ok_cnt") or 0), locks_replicating=int(rule.get("locks_replicating_cnt") or 0),
        locks_stuck=int(rule.get("locks_stuck_cnt") or 0), locks=lock_list, rses=dict(rse_cache), quotas=quotas,
        account_exists=known is not None,
        expires_at=_naive_utc(rule["expires_at"]) if rule.get("expires_at") else None,
        transfer_service_idle=idle, unsubmitted_after_s=unsubmitted_after_s,
    )


@dataclass(frozen=True)
class Quota:
    """An account's local limits and usage by RSE (bytes), read once per probe run."""
    limits: Mapping[str, float] = field(default_factory=dict)
    usage: Mapping[str, int] = field(default_factory=dict)
    unlimited: bool = False  # an admin account: Rucio does not limit it


def _quota(client: Any, account: str) -> Quota | None:
    """None for an account that no longer exists (Rucio keeps the rules of a deleted account until they are
    removed)."""
    from rucio.common.exception import AccountNotFound

    try:
        if _is_admin(client, account):
            return Quota(unlimited=True)
        limits = client.get_local_account_limits(account)
        usage = {u["rse"]: int(u["bytes"]) for u in client.get_local_account_usage(account)}
    except AccountNotFound:
        return None
    return Quota(limits=dict(limits), usage=usage)


def _is_admin(client: Any, account: str) -> bool:
    attributes = [a for group in client.list_account_attributes(account) for a in group]
    return any(a.get("key") == "admin" and str(a.get("value")).lower() == "true" for a in attributes)


def _ignores_quota(rule: Mapping[str, Any]) -> bool:
    return bool(rule.get("ignore_account_limit"))


def gather(client: Any, older_than_s: float, fts_url: str | None, max_rules: int = 100, max_locks: int = 10,
           now: Callable[[], datetime] = lambda: datetime.now(UTC),
           unsubmitted_after_s: float = UNSUBMITTED_AFTER_S,
           fts_auth: AuthBase | None = None) -> tuple[list[dict[str, Any]], bool]:
    """The rules to report, summarised with their reasons, and whether every candidate was examined: every STUCK
    rule, every REPLICATING rule older than `older_than_s`, and, while the transfer service is idle, younger
    REPLICATING rules whose requests have waited unsubmitted for `unsubmitted_after_s` (a conveyor that submits
    nothing is reported after minutes, not after `older_than_s`)."""
    at = now()
    cutoff = at - timedelta(seconds=older_than_s)
    recent = at - timedelta(seconds=unsubmitted_after_s)
    candidates: list[Mapping[str, Any]] = list(client.list_replication_rules({"state": "S"}))
    replicating = list(client.list_replication_rules({"state": "R"}))
    candidates += [r for r in replicating if _naive_utc(r["created_at"]) <= cutoff]
    candidates.sort(key=lambda r: _naive_utc(r["created_at"]))
    young = sorted((r for r in replicating if cutoff < _naive_utc(r["created_at"]) <= recent),
                   key=lambda r: _naive_utc(r["created_at"]))
    rse_cache: dict[str, RseFacts] = {}
    quota_cache: dict[str, Quota | None] = {}
    idle = transfer_service_idle(fts_url, fts_auth=fts_auth) if candidates or young else None

    def examine(rule: Mapping[str, Any]) -> dict[str, Any]:
        return summary(rule_facts(client, rule, fts_url, max_locks, rse_cache, quota_cache, idle,
                                  unsubmitted_after_s, fts_auth), at)

    found = [examine(r) for r in candidates[:max_rules]]
    room = max_rules - len(found)
    if idle and room > 0:
        found += [s for s in map(examine, young[:room]) if any(r["kind"] == "not_submitted" for r in s["reasons"])]
    return found, len(candidates) + (len(young) if idle else 0) <= max_rules


def check(client: Any, fts_url: str | None, older_than_s: float = 3600.0, warning: int = 1, critical: int = 10,
          max_rules: int = 100, unsubmitted_after_s: float = UNSUBMITTED_AFTER_S,
          fts_auth: AuthBase | None = None) -> tuple[Result, list[dict[str, Any]]]:
    rules, complete = gather(client, older_than_s, fts_url, max_rules, unsubmitted_after_s=unsubmitted_after_s,
                             fts_auth=fts_auth)
    return evaluate(rules, older_than_s, warning, critical, complete), rules


def kinds(rules: Iterable[Mapping[str, Any]]) -> Counter[str]:
    return Counter(r["kind"] for rule in rules for r in rule["reasons"])
