"""FTS3 semantics on top of the database: submit, query, cancel, job states, the JSON FTS clients read."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from juno_dcs import errors
from juno_dcs.transfer import db
from juno_dcs.transfer.config import TransferConfig
from juno_dcs.transfer.models import SubmitRequest, storage_element
from juno_dcs.transfer.states import FINAL_JOB_STATES, FileState, JobState, job_state_of

Conn = psycopg.Connection[db.Row]
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
JOB_NAMESPACE = uuid.UUID("7c1b3a6e-1f55-4d8e-9d0b-6a2c4f1e9b21")


class NotFound(errors.NotFound):
    """No such transfer job (404)."""


class Duplicate(errors.Conflict):
    """A job id submitted before: a deterministic id's resubmission (409)."""


def base_id(user_dn: str) -> str:
    """The identity's base id: what `GET /whoami` reports and deterministic job ids derive from."""
    return str(uuid.uuid5(JOB_NAMESPACE, user_dn))


def new_job_id(request: SubmitRequest, user_dn: str, vo: str) -> str:
    """A new job id; with the deterministic generator, uuid5(base_id, vo + sid) as FTS does, so that a
    resubmission of the same request gets the same id (and 409)."""
    params = request.params
    if params.id_generator == "deterministic" and params.sid:
        return str(uuid.uuid5(uuid.UUID(base_id(user_dn)), vo + params.sid))
    return str(uuid.uuid1())


def tokens_of(request: SubmitRequest) -> set[str]:
    """The distinct tokens a submission carries."""
    return {t for f in request.files for t in (*(f.source_tokens or ()), *(f.destination_tokens or ())) if t}


def submit(conn: Conn, request: SubmitRequest, user_dn: str, config: TransferConfig, kept: dict[str, str]) -> str:
    """Store a job of `user_dn` (the token's subject); each token is stored as `kept` has it (sealed, with its
    refresh token: juno_dcs.transfer.keeper)."""
    params = request.params
    job_id = new_job_id(request, user_dn, config.vo)
    job = {
        "job_id": job_id,
        "job_state": JobState.SUBMITTED.value,
        "vo_name": config.vo,
        "user_dn": user_dn,
        "priority": params.job_priority,
        "params": params.model_dump(mode="json", exclude_none=True),
        "job_metadata": params.job_metadata,
        "copy_mode": params.copy_mode,
        "verify_checksum": params.checksum_mode(),
        "overwrite": params.overwrite,
        "retry": params.retry,
        "retry_delay": params.retry_delay,
        "timeout": params.timeout,
        "bring_online": params.bring_online,
        "archive_timeout": params.archive_timeout,
        "sid": params.sid,
    }
    files = []
    for index, f in enumerate(request.files):
        dest = f.destinations[0]
        for rank, source in enumerate(f.sources):
            files.append({
                "job_id": job_id,
                "file_index": index,
                "source_rank": rank,
                "file_state": (FileState.SUBMITTED if rank == 0 else FileState.NOT_USED).value,
                "source_surl": source,
                "dest_surl": dest,
                "source_se": storage_element(source),
                "dest_se": storage_element(dest),
                "source_token": kept.get(f.source_tokens[rank]) if f.source_tokens else None,
                "dest_token": kept.get(f.destination_tokens[0]) if f.destination_tokens else None,
                "file_metadata": f.metadata,
                "staging_metadata": f.staging_metadata,
                "archive_metadata": f.archive_metadata,
                "filesize": f.filesize,
                "checksum": f.checksum,
                "activity": f.activity or "default",
            })
    if not db.insert_job(conn, job, files):
        raise Duplicate(f"job {job_id} was already submitted")
    return job_id


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime(TIME_FORMAT) if value is not None else None


def file_json(row: db.Row) -> dict[str, Any]:
    return {
        "file_id": row["file_id"],
        "job_id": row["job_id"],
        "file_index": row["file_index"],
        "file_state": row["file_state"],
        "source_surl": row["source_surl"],
        "dest_surl": row["dest_surl"],
        "source_se": row["source_se"],
        "dest_se": row["dest_se"],
        "reason": row["reason"] or "",
        "file_metadata": row["file_metadata"],
        "staging_metadata": row["staging_metadata"],
        "archive_metadata": row["archive_metadata"],
        "filesize": row["filesize"],
        "user_filesize": row["filesize"],
        "checksum": row["checksum"],
        "activity": row["activity"],
        "retry": row["retry_count"],
        "start_time": _time(row["start_time"]),
        "finish_time": _time(row["finish_time"]),
        "staging_start": _time(row["staging_start"]),
        "staging_finished": _time(row["staging_finished"]),
        "archive_start": _time(row["archive_start"]),
        "throughput": row["throughput"],
        "transferred": row["transferred"],
        "copy_mode": row["copy_mode"],
    }


def job_json(job: db.Row, files: list[db.Row] | None, file_fields: Sequence[str] | None = None) -> dict[str, Any]:
    first = files[0] if files else None
    out: dict[str, Any] = {
        "job_id": job["job_id"],
        "job_state": job["job_state"],
        "job_type": job["job_type"],
        "vo_name": job["vo_name"],
        "user_dn": job["user_dn"],
        "cred_id": hashlib.sha1(job["user_dn"].encode()).hexdigest()[:16],  # noqa: S324 - an id, not security
        "priority": job["priority"],
        "submit_time": _time(job["submit_time"]),
        "job_finished": _time(job["job_finished"]),
        "reason": job["reason"] or "",
        "job_metadata": job["job_metadata"] if job["job_metadata"] is not None else {},
        "verify_checksum": job["verify_checksum"],
        "overwrite_flag": job["overwrite"],
        "retry": job["retry"],
        "retry_delay": job["retry_delay"],
        "bring_online": job["bring_online"],
        "archive_timeout": job["archive_timeout"],
        "source_se": first["source_se"] if first else None,
        "dest_se": first["dest_se"] if first else None,
        "copy_mode": job["copy_mode"],
        "http_status": "200 Ok",
    }
    if files is not None:
        rendered = [file_json(f) for f in files]
        if file_fields:
            rendered = [{k: v for k, v in f.items() if k in file_fields} for f in rendered]
        out["files"] = rendered
    return out


def query(conn: Conn, job_ids: Sequence[str], with_files: bool, file_fields: Sequence[str] | None
          ) -> list[dict[str, Any]]:
    """Jobs in the order asked; a missing one is an entry with http_status '404 Not Found', as FTS does."""
    jobs = db.get_jobs(conn, job_ids)
    files = db.get_files(conn, list(jobs)) if with_files else {}
    out = []
    for job_id in job_ids:
        job = jobs.get(job_id)
        if job is None:
            out.append({"job_id": job_id, "http_status": "404 Not Found",
                        "http_message": f"No job with the id {job_id} has been found"})
        else:
            out.append(job_json(job, files.get(job_id, []) if with_files else None, file_fields))
    return out


def refresh_job(conn: Conn, job_id: str) -> JobState:
    """Recompute a job's state from its files (the job row is locked: concurrent updates serialize)."""
    job = db.lock_job(conn, job_id)
    if job is None:
        raise NotFound(job_id)
    states = [(i, FileState(s)) for i, s in db.file_states(conn, job_id)]
    state = job_state_of(states, canceled=bool(job["canceled"]))
    if state.value != job["job_state"]:
        reason = None
        if state in (JobState.FAILED, JobState.FINISHEDDIRTY):
            reason = "One or more files failed. Please have a look at the details for more information"
        db.set_job_state(conn, job_id, state.value, state in FINAL_JOB_STATES, reason)
    return state


def cancel(conn: Conn, job_id: str) -> list[db.Row]:
    """Cancel a job's unfinished files; returns the files whose copies were running."""
    job = db.lock_job(conn, job_id)
    if job is None:
        raise NotFound(job_id)
    canceled = []
    if job["job_state"] not in {s.value for s in FINAL_JOB_STATES}:
        canceled = db.cancel_files(conn, job_id)
        db.set_job_state(conn, job_id, JobState.CANCELED.value, True, "Job canceled by the user")
        refresh_job(conn, job_id)
    return canceled
