"""The dispatcher's HTTP API (docs/wms.md): routes validate the body, open one transaction, call logic and
map its errors to HTTP answers `{"detail": "..."}`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from juno_dcs.errors import JunoDcsError
from juno_dcs.wms import db, logic
from juno_dcs.wms.models import (
    AddJobs,
    FinishRequest,
    GetJobRequest,
    HeartbeatRequest,
    JobState,
    ReassignRequest,
    TaskSpec,
)


def _detail(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def create_app(ctx: logic.Context, pool: db.Pool, pilot_pool: db.AsyncPool) -> FastAPI:
    """`pool` serves the routes that run in the thread pool; `pilot_pool` (opened and closed with the app) the
    pilots' getjob, which runs in the event loop: hundreds of pilots ask at once, and a thread hop and three
    round trips per ask were most of its cost."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await pilot_pool.open()
        try:
            yield
        finally:
            await pilot_pool.close()

    app = FastAPI(title="JUNO DCS dispatcher (PanDA-like WMS)", version="1.0",
                  description="Tasks, jobs and pilots; see docs/wms.md.", lifespan=lifespan)

    @contextmanager
    def transaction() -> Iterator[db.Conn]:
        with pool.connection() as conn, conn.transaction():
            yield conn

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
    async def _tree(_: Request, exc: JunoDcsError) -> JSONResponse:
        """The project's error tree (logic.NotFound 404, logic.Conflict 409, logic.Invalid 400, ...)."""
        return _detail(exc.http_status, str(exc))

    @app.exception_handler(psycopg.OperationalError)
    async def _db_down(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        return _detail(503, f"the database is not available: {exc}")

    # --- tasks
    @app.post("/v1/tasks", status_code=201)
    def submit_task(body: TaskSpec) -> dict[str, Any]:
        with transaction() as conn:
            task_id, job_ids = logic.submit_task(conn, ctx, body)
        return {"task_id": task_id, "job_ids": job_ids}

    @app.post("/v1/tasks/{task_id}/jobs")
    def add_jobs(task_id: int, body: AddJobs) -> dict[str, Any]:
        with transaction() as conn:
            job_ids, created = logic.add_jobs(conn, ctx, task_id, body.jobs)
        return {"job_ids": job_ids, "created": created}

    @app.get("/v1/tasks")
    def list_tasks() -> list[dict[str, Any]]:
        with transaction() as conn:
            return logic.tasks(conn)

    @app.get("/v1/tasks/{task_id}")
    def get_task(task_id: int) -> dict[str, Any]:
        with transaction() as conn:
            return logic.task(conn, task_id)

    @app.post("/v1/tasks/{task_id}/kill")
    def kill_task(task_id: int) -> dict[str, Any]:
        with transaction() as conn:
            return logic.kill_task(conn, task_id)

    # --- jobs
    @app.get("/v1/jobs")
    def list_jobs(task_id: int | None = None, state: JobState | None = None, site: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=100000)] = 1000,
                  offset: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
        with transaction() as conn:
            return [logic.job_json(r) for r in db.list_jobs(conn, task_id, state, site, limit, offset)]

    @app.get("/v1/jobs/{job_id}")
    def get_job(job_id: int) -> dict[str, Any]:
        with transaction() as conn:
            return logic.job(conn, job_id)

    @app.post("/v1/jobs/{job_id}/kill")
    def kill_job(job_id: int) -> dict[str, Any]:
        with transaction() as conn:
            return logic.kill_job(conn, job_id)

    @app.post("/v1/jobs/{job_id}/reassign")
    def reassign_job(job_id: int, body: ReassignRequest | None = None) -> dict[str, Any]:
        with transaction() as conn:
            return logic.reassign_job(conn, ctx, job_id, body.site if body else None)

    @app.post("/v1/jobs/{job_id}/retry")
    def retry_job(job_id: int) -> dict[str, Any]:
        with transaction() as conn:
            return logic.retry_job(conn, job_id)

    # --- pilots
    @app.post("/v1/pilot/getjob", responses={204: {"description": "no job fits the slot"}})
    async def getjob(body: GetJobRequest) -> Response:
        async with pilot_pool.connection() as conn:
            found = await logic.get_job(conn, ctx, body)
        return Response(status_code=204) if found is None else JSONResponse({"job": found})

    @app.post("/v1/pilot/jobs/{job_id}/heartbeat")
    def heartbeat(job_id: int, body: HeartbeatRequest) -> dict[str, str]:
        with transaction() as conn:
            return {"command": logic.heartbeat(conn, ctx, job_id, body.pilot_id, body.state)}

    @app.post("/v1/pilot/jobs/{job_id}/finish")
    def finish(job_id: int, body: FinishRequest) -> dict[str, Any]:
        with transaction() as conn:
            return logic.finish(conn, ctx, job_id, body)

    # --- queues, pilots, health
    @app.get("/v1/queues")
    def queues() -> list[dict[str, Any]]:
        with transaction() as conn:
            counts = db.queue_counts(conn)
            pilots = db.pilots_per_queue(conn, ctx.lease_s)
        return [{**q.as_json(), "jobs": counts.get(name, {}), "pilots": pilots.get(name, 0)}
                for name, q in ctx.queues.items()]

    @app.get("/v1/pilots")
    def pilots() -> list[dict[str, Any]]:
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
