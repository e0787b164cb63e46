"""The dispatcher's HTTP API (docs/wms.md): routes check the caller's token (juno_dcs.wms.access), validate the
body, open one transaction, call logic and map its errors to HTTP answers `{"detail": "..."}`. Every route but
`/v1/health` (and the API's description, `/openapi.json`, `/docs`) needs a token; a refusal is logged with the
token's subject and id, never the token."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from juno_dcs.errors import JunoDcsError, PermissionDenied, Unauthenticated
from juno_dcs.tokens.config import IdentityCache
from juno_dcs.tokens.verify import bearer
from juno_dcs.wms import db, logic
from juno_dcs.wms.access import CANCEL, CREATE, MODIFY, READ, Caller, Rules
from juno_dcs.wms.models import (
    AddJobs,
    FinishRequest,
    GetJobRequest,
    HeartbeatRequest,
    JobState,
    ReassignRequest,
    TaskSpec,
)

logger = logging.getLogger(__name__)
OPEN = Caller(identity=None)  # token checks off


@dataclass(frozen=True)
class Gate:
    """The token checks of one server process: verified identities cached by token hash until they expire."""

    identities: IdentityCache
    rules: Rules


def _detail(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)


async def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """The verified caller (the app's `state.gate` checks the token). A token seen before is looked up in the event
    loop; a new one is verified in a thread (it may fetch the issuer's keys)."""
    gate: Gate | None = request.app.state.gate
    if gate is None:
        return OPEN
    token = bearer(authorization)
    identity = gate.identities.known(token) or await run_in_threadpool(gate.identities.identify, token)
    request.state.identity = identity  # for the refusal's log line
    return Caller(identity, gate.rules)


Who = Annotated[Caller, Depends(caller)]


def _not_found(what: str) -> logic.NotFound:
    return logic.NotFound(f"{what} does not exist")


def create_app(ctx: logic.Context, pool: db.Pool, pilot_pool: db.AsyncPool, gate: Gate | None) -> FastAPI:
    """`pool` serves the routes that run in the thread pool; `pilot_pool` (opened and closed with the app) the
    pilots' getjob, which runs in the event loop: hundreds of pilots ask at once, and a thread hop and three
    round trips per ask were most of its cost. `gate` None: no token checks (a dispatcher for tests)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await pilot_pool.open()
        try:
            yield
        finally:
            await pilot_pool.close()

    app = FastAPI(title="JUNO DCS dispatcher (PanDA-like WMS)", version="1.0",
                  description="Tasks, jobs and pilots; see docs/wms.md.", lifespan=lifespan)
    app.state.gate = gate

    @contextmanager
    def transaction() -> Iterator[db.Conn]:
        with pool.connection() as conn, conn.transaction():
            yield conn

    def owned_task(conn: db.Conn, task_id: int) -> str:
        owner = db.task_owner(conn, task_id)
        if owner is None:
            raise _not_found(f"task {task_id}")
        return owner

    def owned_job(conn: db.Conn, job_id: int) -> str:
        owner = db.job_owner(conn, job_id)
        if owner is None:
            raise _not_found(f"job {job_id}")
        return owner

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            first = next(e for e in errors if e.get("type") == "json_invalid")
            return _detail(400, f"the body is not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}")
        problems = []
        for e in errors[:20]:
            where = ".".join(str(p) for p in e.get("loc", ()))
            problems.append(f"{where}: {e.get('msg')}")
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        return _detail(422, "; ".join(problems) + more)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _detail(exc.status_code, str(exc.detail))

    @app.exception_handler(JunoDcsError)
    async def _tree(request: Request, exc: JunoDcsError) -> JSONResponse:
        """The project's error tree (logic.NotFound 404, logic.Conflict 409, logic.Invalid 400, access refusals
        401/403, ...)."""
        if isinstance(exc, PermissionDenied):
            identity = getattr(request.state, "identity", None)
            who = f"{identity.subject} (token {identity.token_id})" if identity else "a caller without a valid token"
            logger.info("refused %s %s to %s: %s", request.method, request.url.path, who, exc)
        # RFC 6750: a 401 says how to authenticate
        headers = {"WWW-Authenticate": 'Bearer realm="juno-wms"'} if isinstance(exc, Unauthenticated) else None
        return _detail(exc.http_status, str(exc), headers)

    @app.exception_handler(psycopg.OperationalError)
    async def _db_down(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        return _detail(503, f"the database is not available: {exc}")

    # --- tasks
    @app.post("/v1/tasks", status_code=201)
    def submit_task(body: TaskSpec, who: Who) -> dict[str, Any]:
        who.user(CREATE, "submitting a task")
        owner = who.owner_of_new_task(body.owner, body.kind)
        with transaction() as conn:
            task_id, job_ids = logic.submit_task(conn, ctx, body, owner)
        if who.identity is not None:
            logger.info("task %d %s (%d jobs) submitted by %s (token %s)", task_id, body.name, len(job_ids), owner,
                        who.identity.token_id)
        return {"task_id": task_id, "job_ids": job_ids}

    @app.post("/v1/tasks/{task_id}/jobs")
    def add_jobs(task_id: int, body: AddJobs, who: Who) -> dict[str, Any]:
        who.user(CREATE, "adding jobs to a task")
        with transaction() as conn:
            who.acts_on(owned_task(conn, task_id), f"adding jobs to task {task_id}")
            job_ids, created = logic.add_jobs(conn, ctx, task_id, body.jobs)
        return {"job_ids": job_ids, "created": created}

    @app.get("/v1/tasks")
    def list_tasks(who: Who) -> list[dict[str, Any]]:
        who.user(READ, "listing tasks")
        with transaction() as conn:
            return logic.tasks(conn, who.listing_owner())

    @app.get("/v1/tasks/{task_id}")
    def get_task(task_id: int, who: Who) -> dict[str, Any]:
        who.user(READ, "reading a task")
        with transaction() as conn:
            who.reads(owned_task(conn, task_id), f"reading task {task_id}")
            return logic.task(conn, task_id)

    @app.post("/v1/tasks/{task_id}/kill")
    def kill_task(task_id: int, who: Who) -> dict[str, Any]:
        who.user(CANCEL, "killing a task")
        with transaction() as conn:
            who.acts_on(owned_task(conn, task_id), f"killing task {task_id}")
            return logic.kill_task(conn, task_id)

    # --- jobs
    @app.get("/v1/jobs")
    def list_jobs(who: Who, task_id: int | None = None, state: JobState | None = None, site: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=100000)] = 1000,
                  offset: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
        who.user(READ, "listing jobs")
        with transaction() as conn:
            rows = db.list_jobs(conn, task_id, state, site, limit, offset, owner=who.listing_owner())
            return [logic.job_json(r) for r in rows]

    @app.get("/v1/jobs/{job_id}")
    def get_job(job_id: int, who: Who) -> dict[str, Any]:
        who.user(READ, "reading a job")
        with transaction() as conn:
            who.reads(owned_job(conn, job_id), f"reading job {job_id}")
            return logic.job(conn, job_id)

    @app.post("/v1/jobs/{job_id}/kill")
    def kill_job(job_id: int, who: Who) -> dict[str, Any]:
        who.user(CANCEL, "killing a job")
        with transaction() as conn:
            who.acts_on(owned_job(conn, job_id), f"killing job {job_id}")
            return logic.kill_job(conn, job_id)

    @app.post("/v1/jobs/{job_id}/reassign")
    def reassign_job(job_id: int, who: Who, body: ReassignRequest | None = None) -> dict[str, Any]:
        who.user(MODIFY, "reassigning a job")
        with transaction() as conn:
            who.acts_on(owned_job(conn, job_id), f"reassigning job {job_id}")
            return logic.reassign_job(conn, ctx, job_id, body.site if body else None)

    @app.post("/v1/jobs/{job_id}/retry")
    def retry_job(job_id: int, who: Who) -> dict[str, Any]:
        who.user(MODIFY, "retrying a job")
        with transaction() as conn:
            who.acts_on(owned_job(conn, job_id), f"retrying job {job_id}")
            return logic.retry_job(conn, job_id)

    # --- pilots
    @app.post("/v1/pilot/getjob", responses={204: {"description": "no job fits the slot"}})
    async def getjob(body: GetJobRequest, who: Who) -> Response:
        who.pilot("taking a job")
        async with pilot_pool.connection() as conn:
            found = await logic.get_job(conn, ctx, body)
        return Response(status_code=204) if found is None else JSONResponse({"job": found})

    @app.post("/v1/pilot/jobs/{job_id}/heartbeat")
    def heartbeat(job_id: int, body: HeartbeatRequest, who: Who) -> dict[str, str]:
        who.pilot("a job's heartbeat")
        with transaction() as conn:
            return {"command": logic.heartbeat(conn, ctx, job_id, body.pilot_id, body.state)}

    @app.post("/v1/pilot/jobs/{job_id}/finish")
    def finish(job_id: int, body: FinishRequest, who: Who) -> dict[str, Any]:
        who.pilot("finishing a job")
        with transaction() as conn:
            return logic.finish(conn, ctx, job_id, body)

    # --- queues, pilots, health
    @app.get("/v1/queues")
    def queues(who: Who) -> list[dict[str, Any]]:
        who.reader("reading the queues")
        with transaction() as conn:
            counts = db.queue_counts(conn)
            pilots = db.pilots_per_queue(conn, ctx.lease_s)
        return [{**q.as_json(), "jobs": counts.get(name, {}), "pilots": pilots.get(name, 0)}
                for name, q in ctx.queues.items()]

    @app.get("/v1/pilots")
    def pilots(who: Who) -> list[dict[str, Any]]:
        who.reader("reading the pilots")
        with transaction() as conn:
            rows = db.list_pilots(conn)
        return [{**r, "first_seen": r["first_seen"].isoformat(), "last_seen": r["last_seen"].isoformat()}
                for r in rows]

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        with transaction() as conn:
            conn.execute("SELECT 1")
        return {"status": "ok", "queues": len(ctx.queues), "lease_s": ctx.lease_s}

    return app
