"""Brokerage: which queue a `defined` job goes to, and why (plain functions; no database, no web).

Queues are the topology's sites. A job fits a queue when the queue is online, `job.cores <= slots.cores`,
`job.memory_mb <= job.cores * memory_mb_per_core` and `job.walltime_s <= walltime_s`, where
`memory_mb_per_core = memory_per_core_gb * 1000 * memory_scale` (the job's memory_mb is real MB on this
machine; only the queue's memory is scaled), and, for a job of a release, the site has that release (the
topology's `releases`). A job retried elsewhere (`avoid`: the queues where it failed with a transient error)
goes to another queue that fits when there is one, else back to one it failed at. Among the queues that remain,
the one holding most of the job's inputs (replicas at the site's RSEs) wins, then the least loaded (jobs queued
or running there), then the name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from juno_dcs.clikit import use_rucio_config
from juno_dcs.errors import ConfigError
from juno_dcs.topology import Topology
from juno_dcs.wms.models import releases_words


@dataclass(frozen=True)
class Queue:
    name: str
    site: str
    online: bool
    cores: int
    memory_mb_per_core: int
    walltime_s: int
    rse: str                      # where the queue's outputs go
    site_rses: frozenset[str]     # the site's own RSEs (input locality)
    releases: frozenset[str] = frozenset()  # the offline-software releases the site has

    def as_json(self) -> dict[str, Any]:
        return {"queue": self.name, "site": self.site, "online": self.online, "cores": self.cores,
                "memory_mb_per_core": self.memory_mb_per_core, "walltime_s": self.walltime_s, "rse": self.rse,
                "releases": sorted(self.releases)}


def releases_text(queues: Mapping[str, Queue]) -> str:
    """Every release with the queues that have it, in words: "J24.1.0 (CNAF, IHEP), J25.1.0 (IHEP)"."""
    where: dict[str, list[str]] = {}
    for name, q in sorted(queues.items()):
        for release in q.releases:
            where.setdefault(release, []).append(name)
    return releases_words(where)


def site_distance(topology: Topology, a: str, b: str) -> int:
    if a == b:
        return topology.distances.same_site
    for pair, value in topology.distances.sites.items():
        if sorted(pair.split()) == sorted((a, b)):
            return value
    return topology.distances.default


def output_rse(topology: Topology, site: str) -> str:
    """The site's DISK RSE, else the DISK RSE closest to the site by the topology's distances."""
    disks = sorted(n for n, r in topology.rses.items() if r.type == "DISK")
    own = [n for n in disks if topology.rses[n].site == site]
    if own:
        return own[0]
    if not disks:
        raise ConfigError("the topology has no DISK RSE for outputs")
    return min(disks, key=lambda n: (site_distance(topology, site, topology.rses[n].site), n))


def queues_from_topology(topology: Topology, memory_scale: float) -> dict[str, Queue]:
    out = {}
    for name, site in sorted(topology.sites.items()):
        out[name] = Queue(
            name=name, site=name, online=site.online, cores=site.slots.cores,
            memory_mb_per_core=int(site.slots.memory_per_core_gb * 1000 * memory_scale),
            walltime_s=site.slots.walltime_hours * 3600, rse=output_rse(topology, name),
            site_rses=frozenset(n for n, r in topology.rses.items() if r.site == name),
            releases=frozenset(site.releases),
        )
    return out


class ReplicaLocator(Protocol):
    """Where the inputs are: for each "scope:name", the RSEs holding an available replica."""

    def locate(self, dids: Sequence[str]) -> dict[str, set[str]]: ...


class QuotaOracle(Protocol):
    """The RSEs an account may write to (a local quota above zero there)."""

    def writable(self, account: str) -> set[str]: ...


class RucioReplicaLocator:
    """Replicas from Rucio (rucio.client.Client().list_replicas), in chunks."""

    def __init__(self, rucio_config: Path | None = None, chunk: int = 200) -> None:
        if rucio_config is not None:
            use_rucio_config(rucio_config)
        from rucio.client import Client

        self.client = Client()
        self.chunk = chunk

    def locate(self, dids: Sequence[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        unique = sorted(set(dids))
        for i in range(0, len(unique), self.chunk):
            part = [dict(zip(("scope", "name"), d.split(":", 1), strict=True)) for d in unique[i:i + self.chunk]]
            for rep in self.client.list_replicas(part, all_states=True):
                states = rep.get("states") or {}
                rses = {rse for rse in (rep.get("rses") or {}) if states.get(rse, "AVAILABLE") == "AVAILABLE"}
                out[f"{rep['scope']}:{rep['name']}"] = rses
        return out

    def writable(self, account: str) -> set[str]:
        """The RSEs where `account` has a local quota above zero (Rucio refuses its uploads elsewhere)."""
        limits = self.client.get_local_account_limits(account)
        return {rse for rse, limit in limits.items() if limit is None or limit < 0 or limit > 0}


@dataclass(frozen=True)
class Job:
    """What brokerage needs of a job."""

    job_id: int
    cores: int
    memory_mb: int
    walltime_s: int
    inputs: tuple[str, ...]
    pinned_site: str | None
    owner: str = ""
    writes: bool = False  # it stages outputs or a log out, as its owner, to its queue's RSE
    avoid: frozenset[str] = frozenset()  # queues where it failed with a transient error (retry_elsewhere)
    release: str | None = None  # the offline-software release it needs (None: any site)


@dataclass(frozen=True)
class Choice:
    queue: Queue
    reason: str


@dataclass(frozen=True)
class NoFit:
    reason: str
    permanent: bool  # no queue fits even when every queue is online: the job can never run


def misfit(job: Job, q: Queue, check_online: bool = True,
           writable: Mapping[str, set[str]] | None = None) -> str | None:
    """Why the job does not fit the queue, or None. `writable`: per owner, the RSEs they may write to (None:
    not known, not checked)."""
    if check_online and not q.online:
        return "offline"
    if job.release is not None and job.release not in q.releases:
        return f"no release {job.release}"
    if writable is not None and job.writes and job.owner in writable and q.rse not in writable[job.owner]:
        return f"{job.owner} has no quota at {q.rse}"
    if job.cores > q.cores:
        return f"{job.cores} cores > {q.cores}"
    if job.memory_mb > job.cores * q.memory_mb_per_core:
        return f"{job.memory_mb} MB > {job.cores} x {q.memory_mb_per_core} MB"
    if job.walltime_s > q.walltime_s:
        return f"walltime {job.walltime_s} s > {q.walltime_s} s"
    return None


def broker(job: Job, queues: Mapping[str, Queue], replicas: Mapping[str, set[str]],
           load: Mapping[str, int], writable: Mapping[str, set[str]] | None = None) -> Choice | NoFit:
    """The queue for `job`, with the reason in words; `load` counts the jobs queued or running per queue."""
    if job.pinned_site is not None and job.pinned_site not in queues:
        return NoFit(f"pinned to unknown site {job.pinned_site}", permanent=True)
    names: Iterable[str] = [job.pinned_site] if job.pinned_site is not None else queues
    candidates = [queues[n] for n in names]
    excluded = {q.name: why for q in candidates if (why := misfit(job, q, writable=writable)) is not None}
    fitting = [q for q in candidates if q.name not in excluded]
    pinned = f" (pinned to {job.pinned_site})" if job.pinned_site else ""
    if not fitting:
        never = all(misfit(job, q, check_online=False, writable=writable) for q in candidates)
        detail = "; ".join(f"{n}: {w}" for n, w in sorted(excluded.items()))
        return NoFit(f"no queue fits{pinned}: {detail}", permanent=never)

    avoided = [q.name for q in fitting if q.name in job.avoid]
    if avoided and len(avoided) < len(fitting):
        fitting = [q for q in fitting if q.name not in job.avoid]

    def local(q: Queue) -> int:
        return sum(1 for d in job.inputs if replicas.get(d, set()) & q.site_rses)

    best = min(fitting, key=lambda q: (-local(q), load.get(q.name, 0), q.name))
    needs = f", release {job.release}" if job.release else ""
    words = [f"{best.name}{pinned}: fits {job.cores} core(s), {job.memory_mb} MB, {job.walltime_s} s{needs} "
             f"(queue {best.cores} cores, {best.memory_mb_per_core} MB/core, {best.walltime_s} s)"]
    if job.inputs:
        words.append(f"{local(best)}/{len(job.inputs)} inputs at the site")
    words.append(f"load {load.get(best.name, 0)}")
    others = [f"{q.name} ({local(q)} local, load {load.get(q.name, 0)})" for q in fitting if q is not best]
    if others:
        words.append("over " + ", ".join(others))
    if avoided:
        words.append(f"failed before at {', '.join(avoided)}"
                     + (": no other queue fits" if best.name in job.avoid else ": avoided"))
    if excluded:
        words.append("excluded " + ", ".join(f"{n}: {w}" for n, w in sorted(excluded.items())))
    words.append(f"outputs to {best.rse}")
    return Choice(best, "; ".join(words))
