"""The dispatcher's agent (`juno-wms agent`): brokerage of `defined` jobs and expiry of leases.

Any number of agents may run at once. Each cycle takes the agent's share of the jobs (`Share`, from its heartbeats:
the jobs whose id modulo the live agents' count is its index), and locks them with `FOR UPDATE SKIP LOCKED`, so that
while two agents disagree on the count (for one heartbeat after one starts or stops) neither brokers a job the other
holds. `run_once(share)` does one cycle; the runner (juno_dcs.daemon) loops, sleeping when the batches were not full.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from juno_dcs.heartbeat import ALL, Share
from juno_dcs.wms import db, logic
from juno_dcs.wms.brokerage import Choice, Job, ReplicaLocator, broker
from juno_dcs.wms.models import ACTIVATED, ASSIGNED, ERROR_LOST, FAILED

logger = logging.getLogger(__name__)


@dataclass
class Cycle:
    brokered: int = 0
    unbrokerable: int = 0
    waiting: int = 0
    expired: int = 0
    full: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"brokered": self.brokered, "unbrokerable": self.unbrokerable, "waiting": self.waiting,
                "expired": self.expired}


@dataclass
class Agent:
    pool: db.Pool
    ctx: logic.Context
    locator: ReplicaLocator | None = None
    bulk: int = 1000

    def run_once(self, share: Share = ALL) -> Cycle:
        """One cycle over this agent's share of the jobs."""
        cycle = Cycle()
        with self.pool.connection() as conn, conn.transaction():
            cycle.expired, full_expired = self.expire(conn, share)
        with self.pool.connection() as conn, conn.transaction():
            full_defined = self.broker(conn, cycle, share)
        cycle.full = full_expired or full_defined
        if cycle.brokered or cycle.expired or cycle.unbrokerable:
            logger.info("cycle: %s", cycle.as_json())
        return cycle

    # --- leases
    def expire(self, conn: db.Conn, share: Share = ALL) -> tuple[int, bool]:
        rows = db.lock_expired(conn, self.bulk, share)
        for row in rows:
            diag = f"lease of pilot {row['pilot_id']} ended at {row['lease_until'].isoformat()} without heartbeat"
            logic.fail(conn, self.ctx, row, ERROR_LOST, None, diag, "agent", pilot_id=None, lease_until=None)
        return len(rows), len(rows) == self.bulk

    # --- brokerage
    def broker(self, conn: db.Conn, cycle: Cycle, share: Share = ALL) -> bool:
        rows = db.lock_defined(conn, self.bulk, share)
        if not rows:
            return False
        jobs = [Job(int(r["job_id"]), int(r["cores"]), int(r["memory_mb"]), int(r["walltime_s"]),
                    tuple(r["spec"]["inputs"]), r["pinned_site"], owner=str(r["owner"]),
                    writes=bool(r["spec"].get("outputs") or r["spec"].get("log")),
                    avoid=frozenset(r.get("avoid_queues") or ()), release=r["spec"].get("release"))
                for r in rows]
        replicas = self._replicas(sorted({d for j in jobs for d in j.inputs}))
        writable = self._writable(sorted({j.owner for j in jobs if j.writes}))
        load = db.queue_load(conn)
        activated: list[tuple[int, str, str, str, str]] = []
        history: list[tuple[int, int, str, str]] = []
        for row, job in zip(rows, jobs, strict=True):
            decision = broker(job, self.ctx.queues, replicas, load, writable)
            attempt = int(row["attempt"])
            if isinstance(decision, Choice):
                q = decision.queue
                load[q.name] = load.get(q.name, 0) + 1
                activated.append((job.job_id, q.site, q.name, q.rse, decision.reason))
                history += [(job.job_id, attempt, ASSIGNED, decision.reason),
                            (job.job_id, attempt, ACTIVATED, f"ready for pilots of {q.name}")]
            elif decision.permanent:
                cycle.unbrokerable += 1
                db.update_job(conn, job.job_id, state=FAILED, broker_reason=decision.reason,
                              error_diag=f"brokerage: {decision.reason}")
                history.append((job.job_id, attempt, FAILED, f"brokerage: {decision.reason}"))
            else:
                cycle.waiting += 1
                if row["broker_reason"] != decision.reason:
                    db.update_job(conn, job.job_id, broker_reason=decision.reason)
        db.activate_many(conn, activated)
        db.add_history(conn, history)
        cycle.brokered = len(activated)
        return len(rows) == self.bulk and cycle.waiting < len(rows)

    def _writable(self, owners: list[str]) -> dict[str, set[str]] | None:
        """Per owner, the RSEs their quotas let them write to; None without Rucio (nothing is filtered)."""
        oracle = self.locator
        if not owners or oracle is None or not hasattr(oracle, "writable"):
            return None
        out: dict[str, set[str]] = {}
        for owner in owners:
            try:
                out[owner] = oracle.writable(owner)
            except Exception as exc:  # like locality: a lookup that fails filters nothing
                logger.warning("quota lookup of %s failed, brokering without it: %s", owner, exc)
        return out

    def _replicas(self, dids: list[str]) -> dict[str, set[str]]:
        if not dids or self.locator is None:
            return {}
        try:
            return self.locator.locate(dids)
        except Exception as exc:  # the replica catalogue is a weight, not a condition: broker without it
            logger.warning("replica lookup of %d inputs failed, brokering without locality: %s", len(dids), exc)
            return {}
