"""The probes of single services: `ingest-lag` (the ingestor's metrics files), `transfer-queues` (the transfer
service's `/snapshot`), `conditions` (the conditions service and its Squids), `dispatcher` (`/v1/queues`).

Each has a pure `evaluate_*` over the service's answer (unit-tested with canned answers) and a `check_*` that
fetches the answer and evaluates it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.auth import AuthBase

from juno_probes.nagios import Result, Status, threshold, worst

LEASED = ("sent", "starting", "running", "holding")


# --- ingest-lag


@dataclass(frozen=True)
class IngestThresholds:
    lag_warning: int = 1000
    lag_critical: int = 10000
    latency_warning_s: float = 60.0
    latency_critical_s: float = 300.0
    stale_s: float = 120.0  # a running instance whose file is older than this has stopped reporting
    forget_s: float = 3600.0  # files older than this are of instances long gone


def read_metrics(directory: Path) -> list[dict[str, Any]]:
    if not directory.is_dir():
        raise ValueError(f"{directory}: no such metrics directory (docs/ingest.md, metrics_dir)")
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being rewritten right now; the next run sees it
        if isinstance(data, dict):
            found.append({**data, "_file": path.name})
    return found


def evaluate_ingest(instances: Sequence[Mapping[str, Any]], now: float, limits: IngestThresholds) -> Result:
    live = [m for m in instances if now - float(m.get("updated_at", 0)) <= limits.forget_s
            and m.get("state") != "stopped"]
    if not live:
        return Result(Status.CRITICAL, f"no ingestor reported in the last {limits.forget_s:.0f} s")
    statuses, notes = [Status.OK], []
    lag = sum(int(m.get("lag_total") or 0) for m in live)
    p99s = [float(m["latency_p99_s"]) for m in live if m.get("latency_p99_s") is not None]
    p99 = max(p99s, default=None)
    for m in live:
        name = str(m.get("instance") or m["_file"])
        age = now - float(m.get("updated_at", 0))
        state = str(m.get("state"))
        if age > limits.stale_s:
            statuses.append(Status.WARNING)
            notes.append(f"{name} silent for {age:.0f} s")
        elif state == "failed":
            statuses.append(Status.CRITICAL)
            notes.append(f"{name} failed: {m.get('last_error')}")
        elif state != "running":
            statuses.append(Status.WARNING)
            notes.append(f"{name} {state}" + (f": {m.get('last_error')}" if m.get("last_error") else ""))
    lag_status = threshold(lag, limits.lag_warning, limits.lag_critical)
    if lag_status != Status.OK:
        notes.append(f"lag {lag} messages")
    statuses.append(lag_status)
    if p99 is not None:
        latency_status = threshold(p99, limits.latency_warning_s, limits.latency_critical_s)
        if latency_status != Status.OK:
            notes.append(f"latency p99 {p99:.1f} s")
        statuses.append(latency_status)
    perf = {"lag": f"{lag};{limits.lag_warning};{limits.lag_critical};0", "instances": str(len(live))}
    if p99 is not None:
        perf["latency_p99"] = f"{p99:.2f}s;{limits.latency_warning_s};{limits.latency_critical_s}"
    status = worst(*statuses)
    head = f"{len(live)} ingestor(s), lag {lag}" + (f", latency p99 {p99:.1f} s" if p99 is not None else "")
    return Result(status, head + (": " + "; ".join(notes) if notes else ""), perf)


def check_ingest(directory: Path, limits: IngestThresholds) -> Result:
    return evaluate_ingest(read_metrics(directory), time.time(), limits)


# --- transfer-queues


@dataclass(frozen=True)
class QueueThresholds:
    failure_warning: float = 0.2
    failure_critical: float = 0.5
    min_done: int = 5  # a failure rate over fewer finished or failed transfers says little
    queued_warning: int = 500
    queued_critical: int = 5000
    window_s: float = 900.0


def evaluate_queues(snapshot: Mapping[str, Any], limits: QueueThresholds) -> Result:
    links = list(snapshot.get("links") or [])
    statuses, notes = [Status.OK], []
    queued = active = failed = finished = 0
    for link in links:
        name = f"{link['source_se']}->{link['dest_se']}"
        queued += int(link["queued"])
        active += int(link["active"])
        failed += int(link["failed"])
        finished += int(link["finished"])
        done = int(link["finished"]) + int(link["failed"])
        if done >= limits.min_done:
            rate = int(link["failed"]) / done
            status = threshold(rate, limits.failure_warning, limits.failure_critical)
            if status != Status.OK:
                notes.append(f"{name} {rate:.0%} of {done} failed")
            statuses.append(status)
        status = threshold(int(link["queued"]), limits.queued_warning, limits.queued_critical)
        if status != Status.OK:
            notes.append(f"{name} {link['queued']} queued")
        statuses.append(status)
        if int(link["queued"]) and not int(link["active"]) and not done:
            statuses.append(Status.WARNING)
            notes.append(f"{name} {link['queued']} queued, none active or done in {limits.window_s:.0f} s")
    perf = {"links": str(len(links)), "queued": str(queued), "active": str(active), "finished": str(finished),
            "failed": str(failed)}
    head = f"{len(links)} links, {queued} queued, {active} active, {finished} done and {failed} failed in " \
           f"{limits.window_s:.0f} s"
    return Result(worst(*statuses), head + (": " + "; ".join(notes) if notes else ""), perf)


def check_queues(fts_url: str, limits: QueueThresholds, timeout: float = 10.0,
                 auth: AuthBase | None = None) -> Result:
    try:
        reply = requests.get(f"{fts_url}/snapshot", params={"window": limits.window_s}, timeout=timeout, auth=auth)
        reply.raise_for_status()
        snapshot = reply.json()
    except (requests.RequestException, ValueError) as exc:
        return Result(Status.CRITICAL, f"transfer service at {fts_url} does not answer: {exc.__class__.__name__}")
    return evaluate_queues(snapshot, limits)


# --- conditions


@dataclass(frozen=True)
class Answer:
    name: str
    url: str
    ok: bool
    seconds: float
    detail: str


def evaluate_conditions(answers: Sequence[Answer], warning_s: float, critical_s: float) -> Result:
    if not answers:
        return Result(Status.UNKNOWN, "no conditions service or Squid configured")
    down = [a for a in answers if not a.ok]
    slow = [a for a in answers if a.ok and a.seconds >= warning_s]
    statuses = [Status.CRITICAL if down else Status.OK]
    statuses += [threshold(a.seconds, warning_s, critical_s) for a in answers if a.ok]
    perf = {f"{a.name}_time": f"{a.seconds:.3f}s;{warning_s};{critical_s}" for a in answers if a.ok}
    notes = [f"{a.name} ({a.url}): {a.detail}" for a in down] + [f"{a.name} slow ({a.seconds:.2f} s)" for a in slow]
    head = f"{len(answers) - len(down)} of {len(answers)} answer"
    return Result(worst(*statuses), head + (": " + "; ".join(notes) if notes else ""), perf)


def ask(name: str, base: str, path: str, timeout: float) -> Answer:
    url = f"{base}{path}"
    started = time.monotonic()
    try:
        reply = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return Answer(name, url, False, time.monotonic() - started, f"no answer ({exc.__class__.__name__})")
    seconds = time.monotonic() - started
    if reply.status_code != 200:
        return Answer(name, url, False, seconds, f"HTTP {reply.status_code}")
    return Answer(name, url, True, seconds, "ok")


def check_conditions(service: str | None, squids: Mapping[str, str], path: str = "/health", warning_s: float = 1.0,
                     critical_s: float = 5.0, timeout: float = 10.0) -> Result:
    targets = ([("service", service)] if service else []) + [(f"squid-{s}", u) for s, u in sorted(squids.items())]
    return evaluate_conditions([ask(n, u, path, timeout) for n, u in targets], warning_s, critical_s)


# --- dispatcher


def evaluate_dispatcher(queues: Sequence[Mapping[str, Any]], min_jobs: int = 1) -> Result:
    """WARNING: activated jobs in an online queue that no pilot serves; CRITICAL: leased jobs in a queue no
    pilot has been heard from within the lease (they are lost and will be requeued when the lease ends)."""
    statuses, notes = [Status.OK], []
    activated = leased = pilots = 0
    for q in queues:
        jobs = {str(k): int(v) for k, v in dict(q.get("jobs") or {}).items()}
        waiting = jobs.get("activated", 0)
        running = sum(jobs.get(s, 0) for s in LEASED)
        activated += waiting
        leased += running
        pilots += int(q.get("pilots") or 0)
        if int(q.get("pilots") or 0):
            continue
        if running >= min_jobs:
            statuses.append(Status.CRITICAL)
            notes.append(f"{q['queue']}: {running} leased jobs, no pilot heartbeat")
        if waiting >= min_jobs and q.get("online", True):
            statuses.append(Status.WARNING)
            notes.append(f"{q['queue']}: {waiting} activated jobs, no pilots")
    perf = {"queues": str(len(queues)), "activated": str(activated), "leased": str(leased), "pilots": str(pilots)}
    head = f"{len(queues)} queues, {activated} activated, {leased} leased jobs, {pilots} pilots"
    return Result(worst(*statuses), head + (": " + "; ".join(notes) if notes else ""), perf)


def check_dispatcher(url: str, min_jobs: int = 1, timeout: float = 10.0, auth: AuthBase | None = None) -> Result:
    try:
        reply = requests.get(f"{url}/v1/queues", timeout=timeout, auth=auth)
        reply.raise_for_status()
        queues = reply.json()
    except (requests.RequestException, ValueError) as exc:
        return Result(Status.CRITICAL, f"dispatcher at {url} does not answer: {exc.__class__.__name__}")
    return evaluate_dispatcher(queues, min_jobs)
