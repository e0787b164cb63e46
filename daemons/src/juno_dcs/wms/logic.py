"""The dispatcher's logic: plain functions on a connection inside the caller's transaction (no web framework).

    JunoDcsError (juno_dcs.errors)
    └── WmsLogicError          an answer to the caller (400)
        ├── NotFound           no such task or job (404; also a juno_dcs.errors.NotFound)
        ├── Conflict           the state does not allow it: a task name taken, a job not this pilot's (409;
        │                      also a juno_dcs.errors.Conflict)
        └── Invalid            a request that can never be right (400; also a juno_dcs.errors.ConfigError)

`http_status` is the status the dispatcher answers with (juno_dcs.wms.routes maps the tree in one handler).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from juno_dcs import errors
from juno_dcs.wms import db
from juno_dcs.wms.brokerage import Queue, releases_text
from juno_dcs.wms.classify import Classified, ErrorRules, classify
from juno_dcs.wms.models import (
    ACTIVATED,
    CANCELLED,
    DEFINED,
    FAILED,
    FINAL_STATES,
    FINISHED,
    LEASED_STATES,
    PILOT_STATES,
    FinishRequest,
    GetJobRequest,
    JobSpec,
    TaskSpec,
)
from juno_dcs.wms.retry import RetryRules, decide

SPEC_FIELDS = ("transformation", "args", "env", "inputs", "outputs", "log")


class WmsLogicError(errors.JunoDcsError):
    """A request the dispatcher answers with an error."""

    http_status = 400


class NotFound(WmsLogicError, errors.NotFound):
    """No such task or job."""

    http_status = 404


class Conflict(WmsLogicError, errors.Conflict):
    """The task's or job's state does not allow the request."""

    http_status = 409


class Invalid(WmsLogicError, errors.ConfigError):
    """A request that can never be right."""

    http_status = 400


@dataclass(frozen=True)
class Context:
    """What the logic needs besides the connection: built once per process from the configuration."""

    queues: Mapping[str, Queue]
    rules: RetryRules
    classes: ErrorRules
    lease_s: int


# --- JSON views
def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def job_json(row: db.Row) -> dict[str, Any]:
    spec = row["spec"]
    out = {k: row[k] for k in ("job_id", "task_id", "key", "state", "attempt", "site", "queue", "output_rse",
                               "broker_reason", "pilot_id", "command", "exit_code", "error_code", "error_class",
                               "error_diag", "cores", "memory_mb", "walltime_s", "max_attempts", "priority",
                               "pinned_site", "avoid_queues")}
    out.update({k: spec[k] for k in SPEC_FIELDS})
    out.update(release=spec.get("release"), job_priority=spec["priority"], output_files=row["output_files"],
               log_file=row["log_file"], resources=row["resources"], lease_until=_iso(row["lease_until"]),
               created=_iso(row["created"]), modified=_iso(row["modified"]))
    return out


def description_json(row: db.Row, lease_s: int) -> dict[str, Any]:
    """The JobDescription (JobSpec plus where and as what) of a leased job row."""
    spec = row["spec"]
    return {"key": row["key"], **{k: spec[k] for k in SPEC_FIELDS}, "release": spec.get("release"),
            "cores": row["cores"], "memory_mb": row["memory_mb"], "walltime_s": row["walltime_s"],
            "max_attempts": row["max_attempts"], "priority": spec["priority"], "site": row["site"],
            "job_id": row["job_id"], "task_id": row["task_id"], "task_name": row["task_name"], "owner": row["owner"],
            "attempt": row["attempt"], "queue": row["queue"], "output_rse": row["output_rse"], "lease_s": lease_s}


def task_json(row: db.Row, by_state: dict[str, int]) -> dict[str, Any]:
    return {"task_id": row["task_id"], "name": row["name"], "kind": row["kind"], "owner": row["owner"],
            "priority": row["priority"], "created": _iso(row["created"]), "killed": _iso(row["killed"]),
            "jobs_total": sum(by_state.values()), "jobs_by_state": by_state}


# --- submission
def check_spec(spec: JobSpec, queues: Mapping[str, Queue]) -> None:
    """Invalid for a job that names a site that is no queue, or a release that no site has."""
    if spec.site is not None and spec.site not in queues:
        raise Invalid(f"job {spec.key!r}: site {spec.site!r} is not a queue; queues are {sorted(queues)}")
    if spec.release is not None and not any(spec.release in q.releases for q in queues.values()):
        raise Invalid(f"job {spec.key!r}: release {spec.release!r} is installed at no site; the releases are "
                      f"{releases_text(queues)}")


def _job_row(spec: JobSpec, task_priority: int, queues: Mapping[str, Queue]) -> db.Row:
    check_spec(spec, queues)
    body = spec.model_dump(mode="json", include={*SPEC_FIELDS, "priority", "release"})
    return {"task_id": 0, "key": spec.key, "spec": body, "cores": spec.cores, "memory_mb": spec.memory_mb,
            "walltime_s": spec.walltime_s, "max_attempts": spec.max_attempts,
            "priority": task_priority + spec.priority, "pinned_site": spec.site, "state": DEFINED}


def submit_task(conn: db.Conn, ctx: Context, task: TaskSpec, owner: str) -> tuple[int, list[int]]:
    """`owner` is the caller's (routes take it from the token, never from the body alone)."""
    rows = [_job_row(j, task.priority, ctx.queues) for j in task.jobs]
    task_id = db.insert_task(conn, task.name, task.kind, owner, task.priority)
    if task_id is None:
        raise Conflict(f"a task named {task.name!r} exists")
    for r in rows:
        r["task_id"] = task_id
    return task_id, db.insert_jobs(conn, rows, f"submitted with task {task.name}")


def add_jobs(conn: db.Conn, ctx: Context, task_id: int, jobs: Sequence[JobSpec]) -> tuple[list[int], int]:
    """(the ids of all the given jobs, how many were created); keys that exist are not created again."""
    task = db.lock_task(conn, task_id)  # serializes concurrent additions to one task
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    if task["killed"] is not None:
        raise Conflict(f"task {task_id} was killed: it takes no more jobs")
    known = db.existing_keys(conn, task_id, [j.key for j in jobs])
    new = [_job_row(j, task["priority"], ctx.queues) for j in jobs if j.key not in known]
    for r in new:
        r["task_id"] = task_id
    created = dict(zip([r["key"] for r in new], db.insert_jobs(conn, new, f"added to task {task['name']}"),
                       strict=True))
    return [known.get(j.key) or created[j.key] for j in jobs], len(new)


# --- reads
def task(conn: db.Conn, task_id: int) -> dict[str, Any]:
    row = db.get_task(conn, task_id)
    if row is None:
        raise NotFound(f"task {task_id} does not exist")
    return task_json(row, db.jobs_by_state(conn, [task_id]).get(task_id, {}))


def tasks(conn: db.Conn, owner: str | None = None) -> list[dict[str, Any]]:
    """Every task, or `owner`'s."""
    rows = db.list_tasks(conn, owner)
    counts = db.jobs_by_state(conn, None if owner is None else [int(r["task_id"]) for r in rows])
    return [task_json(r, counts.get(int(r["task_id"]), {})) for r in rows]


def job(conn: db.Conn, job_id: int) -> dict[str, Any]:
    row = db.get_job(conn, job_id)
    if row is None:
        raise NotFound(f"job {job_id} does not exist")
    return {**job_json(row), "task_name": row["task_name"], "owner": row["owner"],
            "history": [{**h, "time": _iso(h["time"])} for h in db.history(conn, job_id)]}


def _locked(conn: db.Conn, job_id: int) -> db.Row:
    row = db.get_job(conn, job_id, lock=True)
    if row is None:
        raise NotFound(f"job {job_id} does not exist")
    return row


# --- commands
def _kill_rows(conn: db.Conn, rows: Sequence[db.Row], why: str) -> None:
    now = [r for r in rows if r["state"] not in LEASED_STATES and r["state"] not in FINAL_STATES]
    later = [r for r in rows if r["state"] in LEASED_STATES and r["command"] != "kill"]
    db.cancel_jobs(conn, [int(r["job_id"]) for r in now])
    db.command_kill(conn, [int(r["job_id"]) for r in later])
    db.add_history(conn, [(r["job_id"], r["attempt"], CANCELLED, why) for r in now]
                   + [(r["job_id"], r["attempt"], r["state"], f"{why}: the pilot is told at its next heartbeat")
                      for r in later])


def kill_job(conn: db.Conn, job_id: int) -> dict[str, Any]:
    row = _locked(conn, job_id)
    if row["state"] in FINAL_STATES:
        raise Conflict(f"job {job_id} is {row['state']} already")
    _kill_rows(conn, [row], "killed by command")
    return job(conn, job_id)


def kill_task(conn: db.Conn, task_id: int) -> dict[str, Any]:
    if db.lock_task(conn, task_id) is None:
        raise NotFound(f"task {task_id} does not exist")
    conn.execute("UPDATE wms.tasks SET killed = COALESCE(killed, now()) WHERE task_id = %s", (task_id,))
    _kill_rows(conn, db.lock_task_jobs(conn, task_id), f"task {task_id} killed by command")
    return task(conn, task_id)


def reassign_job(conn: db.Conn, ctx: Context, job_id: int, site: str | None) -> dict[str, Any]:
    row = _locked(conn, job_id)
    if site is not None and site not in ctx.queues:
        raise Invalid(f"site {site!r} is not a queue; queues are {sorted(ctx.queues)}")
    if row["state"] in LEASED_STATES:
        raise Conflict(f"job {job_id} is {row['state']} on pilot {row['pilot_id']}: kill it, or wait for it")
    if row["state"] in FINAL_STATES:
        raise Conflict(f"job {job_id} is {row['state']}: retry it instead")
    pinned = site if site is not None else row["pinned_site"]
    db.update_job(conn, job_id, state=DEFINED, site=None, queue=None, output_rse=None, pinned_site=pinned)
    where = f" to {site}" if site else ""
    db.add_history(conn, [(job_id, row["attempt"], DEFINED, f"reassigned{where} by command: back to brokerage")])
    return job(conn, job_id)


def retry_job(conn: db.Conn, job_id: int) -> dict[str, Any]:
    row = _locked(conn, job_id)
    if row["state"] not in (FAILED, CANCELLED):
        raise Conflict(f"job {job_id} is {row['state']}: only a failed or cancelled job can be retried")
    task_row = db.get_task(conn, int(row["task_id"]))
    if task_row is not None and task_row["killed"] is not None:
        raise Conflict(f"job {job_id} belongs to task {row['task_id']}, which was killed")
    attempt = int(row["attempt"]) + 1
    db.update_job(conn, job_id, state=DEFINED, attempt=attempt, site=None, queue=None, output_rse=None,
                  pilot_id=None, lease_until=None, command=None, exit_code=None, error_code=None, error_class=None,
                  error_diag=None)
    db.add_history(conn, [(job_id, attempt, DEFINED, f"retried by command: attempt {attempt}")])
    return job(conn, job_id)


# --- pilots
async def get_job(conn: db.AsyncConn, ctx: Context, req: GetJobRequest) -> dict[str, Any] | None:
    row = await db.get_job_for_pilot(conn, req.pilot_id, req.site, req.queue, req.cores, req.memory_mb,
                                     req.walltime_s, ctx.lease_s)
    return None if row is None else description_json(row, ctx.lease_s)


def _pilots_job(conn: db.Conn, job_id: int, pilot_id: str) -> db.Row:
    row = _locked(conn, job_id)
    if row["pilot_id"] != pilot_id or row["state"] not in LEASED_STATES:
        holder = f"pilot {row['pilot_id']}" if row["pilot_id"] else "no pilot"
        raise Conflict(f"job {job_id} is no longer pilot {pilot_id}'s: it is {row['state']}, with {holder}")
    return row


def heartbeat(conn: db.Conn, ctx: Context, job_id: int, pilot_id: str, state: str) -> str:
    row = _pilots_job(conn, job_id, pilot_id)
    order = ("sent", *PILOT_STATES)
    if order.index(state) < order.index(row["state"]):
        raise Invalid(f"job {job_id} is {row['state']}: it cannot go back to {state}")
    db.renew_lease(conn, job_id, state, ctx.lease_s)
    db.touch_pilot(conn, pilot_id)
    if state != row["state"]:
        db.add_history(conn, [(job_id, row["attempt"], state, f"pilot {pilot_id}")])
    return "kill" if row["command"] == "kill" else "continue"


def finish(conn: db.Conn, ctx: Context, job_id: int, req: FinishRequest) -> dict[str, Any]:
    row = db.get_job(conn, job_id, lock=True)
    if row is None:
        raise NotFound(f"job {job_id} does not exist")
    if row["finished_by"] == req.pilot_id and row["pilot_id"] != req.pilot_id:
        return job(conn, job_id)  # a replay of this pilot's report: it was applied already
    _pilots_job(conn, job_id, req.pilot_id)
    attempt = int(row["attempt"])
    common: dict[str, Any] = {
        "pilot_id": None, "lease_until": None, "finished_by": req.pilot_id, "exit_code": req.exit_code,
        "output_files": [o.model_dump() for o in req.outputs],
        "log_file": req.log.model_dump() if req.log else None, "resources": req.resources.model_dump(),
    }
    db.touch_pilot(conn, req.pilot_id)
    if req.state == FINISHED:
        db.update_job(conn, job_id, state=FINISHED, error_code=None, error_class=None, error_diag=None, **common)
        db.add_history(conn, [(job_id, attempt, FINISHED, f"pilot {req.pilot_id}: {len(req.outputs)} outputs")])
        return job(conn, job_id)
    del common["exit_code"]  # fail() records it
    fail(conn, ctx, {**row, "state": FAILED}, req.error_code, req.exit_code, req.error_diag,
         f"pilot {req.pilot_id}", **common)
    return job(conn, job_id)


def fail(conn: db.Conn, ctx: Context, row: db.Row, error_code: int | None, exit_code: int | None, diag: str,
         who: str, **values: Any) -> Classified:
    """Record a failed attempt (classified by the failure classes: error_class is the class, error_code stays
    the pilot's code; exit_code is the payload's, None when it did not end by itself) and apply the retry rules
    to it; `values`: more columns to set."""
    job_id = int(row["job_id"])
    failure = classify(ctx.classes, error_code, exit_code, diag)
    db.update_job(conn, job_id, state=FAILED, exit_code=exit_code, error_code=error_code,
                  error_class=failure.error_class, error_diag=diag, **values)
    why = f"{who}: error {error_code} ({failure.words()}) {diag}".rstrip()
    db.add_history(conn, [(job_id, int(row["attempt"]), FAILED, why)])
    after_failure(conn, ctx, {**row, "state": FAILED}, error_code, failure)
    return failure


def after_failure(conn: db.Conn, ctx: Context, row: db.Row, error_code: int | None, failure: Classified) -> None:
    """Apply the kill command or the retry rules to a job whose attempt just failed (its row is locked)."""
    job_id, attempt = int(row["job_id"]), int(row["attempt"])
    if row["command"] == "kill":  # the pilot obeyed (1144) or failed anyway: the job ends cancelled
        db.update_job(conn, job_id, state=CANCELLED, command=None)
        db.add_history(conn, [(job_id, attempt, CANCELLED, "killed by command")])
        return
    d = decide(ctx.rules, error_code, failure, attempt, int(row["max_attempts"]), int(row["memory_mb"]))
    if d.action == "no_retry":
        db.add_history(conn, [(job_id, attempt, FAILED, d.reason)])
        return
    reset: dict[str, Any] = {"attempt": attempt + 1, "pilot_id": None, "lease_until": None, "command": None}
    queue = ctx.queues.get(row["queue"] or "")
    pinned_here = queue is not None and row.get("pinned_site") == queue.name
    if d.action in ("retry", "retry_elsewhere") and queue is not None and queue.online \
            and (d.action == "retry" or pinned_here):
        # a job pinned to its site has nowhere else to go: brokerage would only send it back here
        where = f"again at {queue.name}" + (" (pinned there)" if d.action == "retry_elsewhere" else "")
        db.update_job(conn, job_id, state=ACTIVATED, **reset)
        db.add_history(conn, [(job_id, attempt + 1, ACTIVATED, f"{d.reason}, {where}")])
        return
    if d.action == "retry_elsewhere" and row["queue"]:
        avoid = sorted({*(row.get("avoid_queues") or []), row["queue"]})
        reset["avoid_queues"] = avoid
        why = f"{d.reason}, back to brokerage avoiding {', '.join(avoid)}"
    else:
        why = f"{d.reason}, back to brokerage"
    db.update_job(conn, job_id, state=DEFINED, memory_mb=d.memory_mb, site=None, queue=None, output_rse=None,
                  **reset)
    db.add_history(conn, [(job_id, attempt + 1, DEFINED, why)])
