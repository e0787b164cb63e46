"""Pure logic of the dashboard: bucketing, series, the share-policy comparison, panels from the services' JSON.

No I/O here: the collector and the routes fetch, these functions shape."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from juno_dcs.dashboard.models import (
    BlockPanelRow,
    IngestorNow,
    Point,
    Production,
    RseReplication,
    Series,
    SiteShare,
    StepRow,
    StuckRule,
    TpcCell,
)
from juno_dcs.ingest.status import BlockView
from juno_dcs.topology import Topology

JOB_STATES = ("defined", "assigned", "activated", "sent", "starting", "running", "holding", "finished", "failed",
              "cancelled")
RUNNING_STATES = frozenset({"starting", "running", "holding"})
FINAL_FILE_STATES = frozenset({"FINISHED", "FAILED"})
MODES = ("pull", "push", "streamed")


def slot_of(t: float, width: float) -> int:
    """The start (epoch seconds) of the slot of width `width` that holds `t`."""
    return int(t // width * width)


def parse_time(text: str | None) -> datetime | None:
    """The transfer service's `%Y-%m-%dT%H:%M:%S` (UTC) or ISO 8601 with an offset; None for none."""
    if not text:
        return None
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Sample:
    series: str
    key: str
    slot: int  # epoch seconds
    value: float


@dataclass(frozen=True)
class DoneFile:
    source_se: str
    dest_se: str
    state: str
    finish_time: datetime
    transferred: int


def done_files(jobs: Iterable[Mapping[str, Any]]) -> list[DoneFile]:
    """The finished and failed files of GET /jobs/ID,...?files=... answers (jobs of other states are skipped)."""
    out = []
    for job in jobs:
        for f in job.get("files") or []:
            finished = parse_time(f.get("finish_time"))
            if f.get("file_state") in FINAL_FILE_STATES and finished is not None:
                out.append(DoneFile(str(f["source_se"]), str(f["dest_se"]), str(f["file_state"]), finished,
                                    int(f.get("transferred") or 0)))
    return out


def channel(source: str, dest: str, site_of_se: Mapping[str, str]) -> str:
    """`IHEP->IN2P3`: a storage element's site, or the storage element itself when it is not known."""
    return f"{site_of_se.get(source, source)}->{site_of_se.get(dest, dest)}"


def throughput_samples(files: Iterable[DoneFile], site_of_se: Mapping[str, str], bucket_s: int,
                       since: float) -> list[Sample]:
    """MB/s per channel per bucket from the bytes of the files FINISHED in the bucket; only buckets starting at or
    after `since` (the earlier ones may miss files that are no longer looked at, so they are left as they were)."""
    sums: dict[tuple[str, int], float] = defaultdict(float)
    for f in files:
        slot = slot_of(f.finish_time.timestamp(), bucket_s)
        if slot < since:
            continue
        key = (channel(f.source_se, f.dest_se, site_of_se), slot)
        sums[key] += f.transferred if f.state == "FINISHED" else 0
    return [Sample("throughput", ch, slot, total / 1e6 / bucket_s) for (ch, slot), total in sorted(sums.items())]


def running_per_site(queues: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per site: the dispatcher's jobs by state, summed over the site's queues."""
    out: dict[str, dict[str, int]] = {}
    for q in queues:
        site = out.setdefault(str(q["site"]), {})
        for state, n in (q.get("jobs") or {}).items():
            site[str(state)] = site.get(str(state), 0) + int(n)
    return dict(sorted(out.items()))


def job_samples(per_site: Mapping[str, Mapping[str, int]], slot: int) -> list[Sample]:
    return [Sample("running", site, slot, float(sum(n for s, n in states.items() if s in RUNNING_STATES)))
            for site, states in per_site.items()]


def lag_samples(metrics: Iterable[Mapping[str, Any]], slot: int) -> list[Sample]:
    out = [Sample("ingest_lag", str(m.get("instance", "?")), slot, float(m.get("lag_total") or 0)) for m in metrics]
    if out:
        out.append(Sample("ingest_lag", "total", slot, sum(s.value for s in out)))
    return out


def series(rows: Iterable[Sample], step_s: float, until: float, fill: float | None = None) -> list[Series]:
    """Rows into one line per key, oldest first. With `fill`, the slots without a row from the line's first row to
    `until` get that value (no transfer finished in a bucket: 0 MB/s); without, they are left out (no sample
    was taken then)."""
    by_key: dict[str, dict[int, float]] = defaultdict(dict)
    for r in rows:
        by_key[r.key][r.slot] = r.value
    out = []
    for key in sorted(by_key):
        values = by_key[key]
        if fill is None:
            points = [Point(x=s * 1000, y=values[s]) for s in sorted(values)]
        else:
            slots = range(min(values), max(int(until), max(values)) + 1, int(step_s))
            points = [Point(x=s * 1000, y=values.get(s, fill)) for s in slots]
        out.append(Series(key=key, points=points))
    return out


@dataclass(frozen=True)
class Placement:
    """Where the share policy puts a block: the raw.yaml rule, and the rule it waits for (`after`)."""

    rule: str
    after: str | None = None


def expected_rses(planned: Iterable[tuple[Placement, Sequence[str]]]) -> dict[str, Placement]:
    """RSE -> the policy's placement there, from (placement, RSEs of the rule's expression) pairs."""
    out: dict[str, Placement] = {}
    for place, rses in planned:
        for rse in rses:
            out.setdefault(rse, place)
    return out


def compare_block(block: BlockView, expected: Mapping[str, Placement], topology: Topology,
                  checked_at: str | None = None) -> BlockPanelRow:
    """Per RSE that the policy names or that holds files or rules: expected or not, files held, rule states."""
    held: dict[str, int] = {}
    states: dict[str, list[str]] = defaultdict(list)
    for site in block.sites.values():
        held.update(site.rses)
        for rule in site.rule_details:
            for rse in _rses_of_rule(rule.rse_expression, topology):
                states[rse].append(rule.state)
    rows = []
    for rse in sorted(set(expected) | set(held) | set(states)):
        files, place, rule_states = held.get(rse, 0), expected.get(rse), states.get(rse, [])
        site_name = topology.rses[rse].site if rse in topology.rses else rse
        rows.append(RseReplication(rse=rse, site=site_name, expected=place is not None,
                                   policy_rule=place.rule if place else None, files=files, rule_states=rule_states,
                                   state=_replication_state(place, files, block.files, rule_states)))
    return BlockPanelRow(name=block.name, state=block.state, files=block.files, bytes=block.bytes, rses=rows,
                         checked_at=checked_at)


def _rses_of_rule(expression: str, topology: Topology) -> list[str]:
    from juno_dcs.placement.rse_expr import evaluate

    try:
        return evaluate(expression, topology)
    except ValueError:
        return []


def _replication_state(place: Placement | None, files: int, total: int, rule_states: Sequence[str]) -> str:
    if place is None:
        return "extra"
    if "STUCK" in rule_states:
        return "stuck"
    if files >= total and (not rule_states or all(s == "OK" for s in rule_states)):
        return "complete"
    if not rule_states and files < total:
        return "waiting" if place.after else "missing"
    return "replicating"


def site_shares(blocks: Iterable[BlockPanelRow]) -> list[SiteShare]:
    expected: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    for block in blocks:
        for r in block.rses:
            if r.expected:
                expected[r.site] += block.files
                held[r.site] += min(r.files, block.files)
    return [SiteShare(site=s, expected_files=expected[s], held_files=held[s]) for s in sorted(expected)]


def productions(tasks: Iterable[Mapping[str, Any]], workflow: Sequence[str] = ("detsim", "elecsim", "cal", "rec")
                ) -> list[Production]:
    """The production tasks (`<production>.<step>`, as the production manager names them) grouped by production,
    steps in workflow order."""
    grouped: dict[tuple[str, str], list[StepRow]] = defaultdict(list)
    order = {step: i for i, step in enumerate(workflow)}
    for task in tasks:
        if task.get("kind") != "production":
            continue
        name, _, step = str(task["name"]).rpartition(".")
        by_state = {str(k): int(v) for k, v in (task.get("jobs_by_state") or {}).items() if int(v)}
        grouped[(name or step, str(task.get("owner", "")))].append(StepRow(
            step=step, task_id=int(task["task_id"]), jobs_total=sum(by_state.values()), jobs_by_state=by_state))
    return [Production(name=name, owner=owner, steps=sorted(steps, key=lambda s: (order.get(s.step, 99), s.task_id)))
            for (name, owner), steps in sorted(grouped.items())]


def tpc_matrix(attempts: Iterable[Any]) -> tuple[dict[str, dict[str, dict[str, TpcCell]]], list[str]]:
    """`juno_probes.store.TpcAttempt`s (newest per pair and mode) into mode -> source -> destination -> cell, and
    the failing cells in words."""
    matrix: dict[str, dict[str, dict[str, TpcCell]]] = {}
    failing = []
    for a in sorted(attempts, key=lambda a: (a.mode, a.source, a.destination)):
        matrix.setdefault(a.mode, {}).setdefault(a.source, {})[a.destination] = TpcCell(
            ok=a.ok, duration_s=a.duration_s, throughput_mb_s=a.throughput_mb_s, error=a.error,
            at=a.at.astimezone(UTC).isoformat(timespec="seconds"))
        if not a.ok:
            failing.append(f"{a.mode} {a.source}->{a.destination}: {a.error or 'failed'}")
    return matrix, failing


def tpc_success(attempts: Iterable[Any], bucket_s: int) -> list[Sample]:
    """Per mode and bucket: the percentage of attempts that succeeded."""
    counts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for a in attempts:
        c = counts[(a.mode, slot_of(a.at.timestamp(), bucket_s))]
        c[0] += bool(a.ok)
        c[1] += 1
    return [Sample("tpc", mode, slot, 100.0 * ok / n) for (mode, slot), (ok, n) in sorted(counts.items())]


def stuck_rules(details: Mapping[str, Any]) -> list[StuckRule]:
    """The rules of a `stuck-rules` probe run's details (`rules`: a list of objects, each with rule_id, did,
    rse_expression, state and `reasons` [{kind, text}] or one `reason`); the other fields are kept in `extra`."""
    out = []
    for r in details.get("rules") or []:
        if not isinstance(r, Mapping):
            continue
        reason = r.get("reason")
        if reason is None and isinstance(r.get("reasons"), list):  # juno-probe stuck-rules: [{kind, text}]
            reason = "; ".join(str(x.get("text", x)) if isinstance(x, Mapping) else str(x) for x in r["reasons"])
        did = r.get("did") or (f"{r['scope']}:{r['name']}" if "scope" in r and "name" in r else "")
        known = {"id", "rule_id", "did", "scope", "name", "rse_expression", "state", "reason", "reasons"}
        out.append(StuckRule(rule_id=str(r.get("rule_id") or r.get("id") or ""), did=str(did),
                             rse_expression=str(r.get("rse_expression") or ""), state=str(r.get("state") or ""),
                             reason=str(reason or "no reason recorded"),
                             extra={k: v for k, v in r.items() if k not in known}))
    return out


def ingestors(metrics: Iterable[Mapping[str, Any]]) -> list[IngestorNow]:
    out = []
    for m in metrics:
        updated = m.get("updated_at")
        out.append(IngestorNow(
            instance=str(m.get("instance", "?")), state=str(m.get("state", "?")), last_error=m.get("last_error"),
            lag_total=int(m.get("lag_total") or 0), consumed=int(m.get("consumed") or 0),
            registered=int(m.get("registered") or 0), latency_p50_s=m.get("latency_p50_s"),
            updated_at=datetime.fromtimestamp(float(updated), UTC).isoformat(timespec="seconds") if updated else None))
    return out
