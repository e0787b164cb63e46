"""What the production manager does, on its three stores: PostgreSQL (`Store`), the dispatcher (`Wms`) and
Rucio (`Catalog`). No CLI and no loop here.

Production states: submitting -> running <-> paused; running -> done (every step's datasets closed);
any but done -> killed.

How later steps are triggered: data driven. Each pass of `process` lists the previous step's output dataset in
Rucio (list_files) and creates one job of the next step per file that has no job yet: a detsim file of job 7
registered by its pilot gives elecsim job 7 in the next pass, whatever the other detsim jobs do. The passes come
when Rucio's events (RULE_OK of the step datasets' rules, which notify) wake the daemon, and at least every
reconcile interval (prodsys/daemon.py).

Idempotence: every job is posted with its key (<step>.<job>) to the step's task, and the dispatcher creates
a key once, so a replay after a crash, a restart or a second instance creates nothing twice. The job ids are
then recorded in prodsys.jobs (ON CONFLICT DO NOTHING). Two instances split productions by PostgreSQL advisory
locks: a production locked by one is skipped by the other in that pass.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from juno_dcs.errors import ConfigError, Conflict, NotFound, ServiceError
from juno_dcs.placement.applier import Notify
from juno_dcs.prodsys import planning
from juno_dcs.prodsys.catalog import Catalog
from juno_dcs.prodsys.db import Row, Store
from juno_dcs.prodsys.steering import MAX_JOBS, Steering
from juno_dcs.topology import Topology
from juno_dcs.wms.client import WmsError
from juno_dcs.wms.failures import group
from juno_dcs.wms.models import FINAL_STATES, JobSpec

logger = logging.getLogger(__name__)
BATCH = 500  # jobs per dispatcher request
ACTIVE = ("submitting", "running")


class ProductionError(ConfigError):
    """A command with bad input for the production (a job count out of range)."""


class UnknownProduction(ProductionError, NotFound):
    """No production (or step) of that id or name."""


class ProductionConflict(Conflict):
    """A command the production's state does not allow (another steering under its name, a done production)."""


class Wms(Protocol):
    def submit_task(self, name: str, kind: str, owner: str, jobs: Sequence[JobSpec],
                    priority: int = 0) -> tuple[int, list[int]]: ...
    def add_jobs(self, task_id: int, jobs: Sequence[JobSpec]) -> list[int]: ...
    def tasks(self) -> list[dict[str, Any]]: ...
    def task(self, task_id: int) -> dict[str, Any]: ...
    def kill_task(self, task_id: int) -> dict[str, Any]: ...
    def jobs(self, **filters: Any) -> list[dict[str, Any]]: ...


@dataclass
class Manager:
    store: Store
    wms: Wms
    catalog: Catalog
    topology: Topology
    owner: str = "production"
    _policy_applied: set[int] = field(default_factory=set, repr=False)  # productions whose policy rules exist

    # --- commands
    def submit(self, steering: Steering) -> tuple[int, bool]:
        """Store the production and make it real: (id, new). Submitting the same steering again completes
        what an interrupted submit left; a different steering under an existing name is refused."""
        site = planning.site_of_storage(steering, self.topology)  # PlanningError before anything is written
        planning.check_release(steering, self.topology, site)
        planning.check_commands(steering)  # an option the payload would refuse: before anything is written
        data = steering.model_dump(mode="json")
        pid, new = self.store.insert_production(steering.name, data, steering.jobs, steering.workflow)
        if not new:
            row = self.get(pid)
            if row["steering"] != data:
                raise ProductionConflict(f"production {steering.name!r} exists (id {pid}) with another steering; "
                                      "give the new one another name, or extend the existing one")
        self.setup(pid)
        return pid, new

    def setup(self, pid: int) -> None:
        """The Rucio collections, the final dataset's rules and the detsim jobs; then state running."""
        row = self.get(pid)
        steering = _steering(row)
        outputs = [planning.dataset(steering, s) for s in steering.workflow]
        logs = [planning.dataset(steering, s, log=True) for s in steering.workflow]
        self.catalog.ensure_collections(planning.container(steering), outputs + logs, attach=outputs)
        self.apply_policy_rules(pid)
        if steering.final_rules == "at_start":
            self.apply_final_rules(pid)
        self.store.set_state(pid, "running", only_from=["submitting"], detail="collections and rules made")
        if self.get(pid)["state"] == "running":
            self.create_detsim_jobs(pid)

    def apply_final_rules(self, pid: int) -> list[str]:
        row = self.get(pid)
        steering = _steering(row)
        report = self.catalog.apply_rules(planning.dataset(steering, steering.final_step), steering.destinations,
                                          steering.lifetime, "Y")  # its events wake the daemon to close steps
        ids = sorted(o.rule_id for o in report.outcomes if o.rule_id)
        if ids != (row["rule_ids"] or []):
            self.store.set_rule_ids(pid, ids)
            self.store.note(pid, "rules", ", ".join(ids))
        return ids

    def apply_policy_rules(self, pid: int) -> None:
        """The rules the policy (production.yaml) gives the intermediate steps' datasets and every log dataset,
        with its lifetimes and destinations, from the start: their files are kept where the policy says for as
        long as it says, and then Rucio removes them. Once per production and process; the applier creates only
        what is missing, so a restart or a second instance makes nothing twice."""
        if pid in self._policy_applied:
            return
        steering = _steering(self.get(pid))
        # the intermediate datasets' rules notify: each time a new file is at the rule's RSE, Rucio sends RULE_OK
        # (hermes -> the broker), which wakes the daemon to create that file's next-step job (prodsys/events.py)
        names: list[tuple[str, Notify]] = [(planning.dataset(steering, s), "Y") for s in steering.workflow
                                           if s != steering.final_step]
        names += [(planning.dataset(steering, s, log=True), "N") for s in steering.workflow]
        made = []
        for name, notify in names:
            report = self.catalog.apply_rules(name, None, None, notify)
            made += [f"{name}: {o.rule_id}" for o in report.outcomes if o.status == "created" and o.rule_id]
        if made:
            self.store.note(pid, "rules", "policy: " + ", ".join(made))
        self._policy_applied.add(pid)

    def extend(self, key: int | str, more: int) -> int:
        if more < 1:
            raise ProductionError(f"--jobs must be at least 1, not {more}")
        row = self.get(key)
        pid = int(row["production_id"])
        steps = {s["step"]: s for s in self.store.steps(pid)}
        if row["state"] in ("done", "killed") or steps["detsim"]["closed"]:
            raise ProductionConflict(f"production {row['name']} is {row['state']}: its datasets are closed, "
                                     "submit a new production instead")
        if row["jobs"] + more > MAX_JOBS:
            raise ProductionError(f"jobs: at most {MAX_JOBS} per production (job numbers have 6 digits)")
        total = self.store.add_planned_jobs(pid, more)
        if row["state"] == "running":
            self.create_detsim_jobs(pid)
        return total

    def pause(self, key: int | str) -> bool:
        """No new jobs until resume (the dispatcher's jobs go on)."""
        row = self.get(key)
        return self.store.set_state(int(row["production_id"]), "paused", only_from=ACTIVE)

    def resume(self, key: int | str) -> bool:
        row = self.get(key)
        return self.store.set_state(int(row["production_id"]), "running", only_from=["paused"])

    def kill(self, key: int | str) -> list[dict[str, Any]]:
        """State killed (no new jobs) and every task of the production killed at the dispatcher."""
        row = self.get(key)
        pid = int(row["production_id"])
        if row["state"] == "done":
            raise ProductionConflict(f"production {row['name']} is done: nothing to kill")
        self.store.set_state(pid, "killed", only_from=["submitting", "running", "paused", "killed"])
        return [self.wms.kill_task(int(s["task_id"])) for s in self.store.steps(pid) if s["task_id"] is not None]

    # --- the daemon's pass
    def process(self, pid: int) -> int:
        """One pass over one production: the jobs that are due, closed datasets, rules; the jobs created."""
        row = self.get(pid)
        if row["state"] == "submitting":
            self.setup(pid)
            row = self.get(pid)
        if row["state"] != "running":
            return 0
        steering = _steering(row)
        self.apply_policy_rules(pid)
        if row["rule_ids"] is None and steering.final_rules == "at_start":
            self.apply_final_rules(pid)
        created = self.create_detsim_jobs(pid)
        steps = self.store.steps(pid)
        for before, step in itertools.pairwise(steps):
            created += self.create_step_jobs(pid, steering, before["step"], step["step"])
        self.close_complete_steps(pid, steering, row)
        return created

    def create_detsim_jobs(self, pid: int) -> int:
        row = self.get(pid)
        steering = _steering(row)
        have = self.store.job_numbers(pid, "detsim")
        missing = [n for n in range(1, int(row["jobs"]) + 1) if n not in have]
        site = planning.site_of_storage(steering, self.topology)
        return self._create(pid, steering, "detsim", [(n, planning.job_spec(steering, "detsim", n, site), None)
                                                      for n in missing])

    def create_step_jobs(self, pid: int, steering: Steering, before: str, step: str) -> int:
        """One job of `step` per file of `before`'s output dataset that has none yet."""
        have = self.store.job_numbers(pid, step)
        numbers = sorted({n for f in self.catalog.files(planning.dataset(steering, before))
                          if (n := planning.job_of_file(steering, before, f.name)) is not None} - have)
        site = planning.site_of_storage(steering, self.topology)
        return self._create(pid, steering, step, [
            (n, planning.job_spec(steering, step, n, site), planning.did(planning.output_file(steering, before, n)))
            for n in numbers])

    def _create(self, pid: int, steering: Steering, step: str,
                jobs: list[tuple[int, JobSpec, str | None]]) -> int:
        for start in range(0, len(jobs), BATCH):
            batch = jobs[start:start + BATCH]
            ids = self._post(pid, steering, step, [spec for _, spec, _ in batch])
            self.store.record_jobs(pid, step, [(n, job_id, inp) for (n, _, inp), job_id in zip(batch, ids,
                                                                                             strict=True)])
            logger.info("%s: %d %s jobs posted (%s..%s)", steering.name, len(batch), step, batch[0][1].key,
                        batch[-1][1].key)
        return len(jobs)

    def _post(self, pid: int, steering: Steering, step: str, specs: list[JobSpec]) -> list[int]:
        """The jobs' ids at the dispatcher: added to the step's task, which is made with them if needed."""
        task_id = self.task_id(pid, step)
        if task_id is not None:
            return self.wms.add_jobs(task_id, specs)
        name = planning.task_name(steering, step)
        try:
            task_id, ids = self.wms.submit_task(name, "production", self.owner, specs, priority=steering.priority)
        except WmsError as exc:
            if exc.status != 409:
                raise
            task_id = self._task_named(name)  # made by another instance, or before a crash
            self.store.set_task(pid, step, task_id)
            return self.wms.add_jobs(task_id, specs)
        recorded = self.store.set_task(pid, step, task_id)
        if recorded != task_id:  # cannot happen with the advisory lock; kept honest if it does
            logger.warning("%s: task %d made, %d recorded first", name, task_id, recorded)
        return ids

    def _task_named(self, name: str) -> int:
        for task in self.wms.tasks():
            if task.get("name") == name:
                return int(task["task_id"])
        raise ServiceError(f"the dispatcher refused task {name!r} as existing but does not list it")

    def task_id(self, pid: int, step: str) -> int | None:
        for s in self.store.steps(pid):
            if s["step"] == step:
                return None if s["task_id"] is None else int(s["task_id"])
        raise UnknownProduction(f"production {pid} has no step {step}")

    def close_complete_steps(self, pid: int, steering: Steering, row: Row) -> None:
        """Close the datasets of each step whose jobs are all over, in order; the production is done when the
        last is closed. A step is complete when the one before it is closed, every file of that one has its
        job here (created in this pass) and every job of this step is in a final state at the dispatcher."""
        counts = self.store.job_counts(pid)
        for s in self.store.steps(pid):
            step = s["step"]
            if s["closed"]:
                continue
            created = counts.get(step, 0)
            if step == "detsim":
                if created < int(row["jobs"]):
                    return
            else:
                before = planning.previous_step(steering, step) or "detsim"
                expected = {n for f in self.catalog.files(planning.dataset(steering, before))
                            if (n := planning.job_of_file(steering, before, f.name)) is not None}
                if not expected <= self.store.job_numbers(pid, step):
                    return
            if created and not self._all_final(s["task_id"], created):
                return
            for name in (planning.dataset(steering, step), planning.dataset(steering, step, log=True)):
                self.catalog.close(name)
            self.store.set_closed(pid, step)
            self.store.note(pid, "close", f"{step}: {created} jobs over")
            logger.info("%s: %s complete, datasets closed", steering.name, step)
        if self.get(pid)["rule_ids"] is None:
            self.apply_final_rules(pid)  # at_close; and an at_start production whose rules failed at its start
        self.store.set_state(pid, "done", only_from=["running"], detail="every step complete")

    def _all_final(self, task_id: int | None, created: int) -> bool:
        if task_id is None:
            return False
        by_state = self.wms.task(task_id).get("jobs_by_state") or {}
        final = sum(int(by_state.get(state, 0)) for state in FINAL_STATES)
        return final >= created and sum(int(v) for v in by_state.values()) == final

    # --- status
    def status(self, key: int | str) -> dict[str, Any]:
        row = self.get(key)
        pid = int(row["production_id"])
        steering = _steering(row)
        counts = self.store.job_counts(pid)
        steps = []
        for s in self.store.steps(pid):
            step = s["step"]
            files = [f for f in self.catalog.files(planning.dataset(steering, step))
                     if planning.job_of_file(steering, step, f.name) is not None]
            by_state: dict[str, int] = {}
            failures: list[dict[str, Any]] = []
            if s["task_id"] is not None:
                by_state = {k: int(v) for k, v in (self.wms.task(int(s["task_id"])).get("jobs_by_state")
                                                    or {}).items() if int(v)}
                failures = [_failure(j) for j in self._all_jobs(int(s["task_id"]), "failed")]
            steps.append({
                "step": step, "task_id": s["task_id"], "task": planning.task_name(steering, step),
                "dataset": planning.did(planning.dataset(steering, step)), "closed": s["closed"],
                "jobs_created": counts.get(step, 0), "jobs_by_state": by_state,
                "files": len(files), "bytes": sum(f.bytes for f in files), "failures": failures,
                "errors": [g.as_json() for g in group(failures)],
            })
        return {"production_id": pid, "name": row["name"], "state": row["state"], "jobs": row["jobs"],
                "campaign": steering.campaign, "workflow": list(steering.workflow),
                "container": planning.did(planning.container(steering)), "final_rules": row["rule_ids"] or [],
                "steps": steps}

    def _all_jobs(self, task_id: int, state: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.wms.jobs(task_id=task_id, state=state, limit=1000, offset=len(out))
            out += page
            if len(page) < 1000:
                return out

    # --- lookups
    def get(self, key: int | str) -> Row:
        if isinstance(key, str) and key.isdigit():
            key = int(key)
        row = self.store.production(key)
        if row is None:
            raise UnknownProduction(f"no production {key!r}")
        return row


def _steering(row: Row) -> Steering:
    return Steering.model_validate(row["steering"])


def _failure(job: dict[str, Any]) -> dict[str, Any]:
    return {k: job.get(k) for k in ("job_id", "key", "attempt", "site", "error_code", "error_class", "error_diag")}
