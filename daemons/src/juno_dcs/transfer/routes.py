"""The FTS3 REST API (the parts Rucio's fts3 transfertool and the `fts3` client use) plus job listing and
a per-link snapshot. Routes check and call logic, which does the work; one transaction per request. Errors of
the project's tree (juno_dcs.errors: SubmitError 400, logic.NotFound 404, logic.Duplicate 409, ...) become FTS3's
error body {"status": "<code>", "message": ...} in one handler, as do FastAPI's own."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from juno_dcs.errors import ConfigError, JunoDcsError, PermissionDenied
from juno_dcs.tokens.config import IdentityCache, ServiceAuth
from juno_dcs.tokens.scopes import Scope
from juno_dcs.tokens.sealed import Sealer
from juno_dcs.tokens.verify import Identity, Verifier, bearer
from juno_dcs.transfer import copier, db, logic
from juno_dcs.transfer.config import TransferConfig
from juno_dcs.transfer.keeper import CLEANUP_S, TokenKeeper
from juno_dcs.transfer.models import parse_submission

API_VERSION = {"major": 3, "minor": 12, "patch": 0}
MAX_BODY = 64 * 1024 * 1024
Pool = ConnectionPool[psycopg.Connection[db.Row]]
logger = logging.getLogger("juno_dcs.transfer.api")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"status": f"{status}", "message": message})


# Every caller of a service whose token checks are off (`auth: null`): may submit, and may read and change all
ANONYMOUS = Identity(subject="anonymous", client_id="", scopes=(Scope("fts"),), groups=(), expires=0,
                     token_id="-")  # noqa: S106 - not a secret: the id logs show for a caller without a token


def caller(request: Request) -> Identity:
    """Who is calling: the verified token of the request (juno_dcs.tokens), or 401 with the reason."""
    identities: IdentityCache | None = request.app.state.identities
    if identities is None:
        return ANONYMOUS
    return identities.identify(bearer(request.headers.get("authorization")))


Caller = Annotated[Identity, Depends(caller)]


def may_read_all(who: Identity, auth: ServiceAuth | None) -> bool:
    return auth is None or any(who.in_group(g) for g in auth.reader_groups)


def may_change(who: Identity, owner: str, auth: ServiceAuth | None) -> bool:
    return auth is None or who.subject == owner or who.in_group(auth.admin_group)


def forbidden(job_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "http_status": "403 Forbidden",
            "http_message": f"job {job_id} belongs to another account"}


def create_app(config: TransferConfig, pool: Pool, verifier: Verifier | None = None) -> FastAPI:
    """The REST API. Every route but `GET /` needs a token of the configured issuer for one of its audiences
    (juno_dcs.tokens); a job belongs to the token's subject. Submitting needs the `fts` scope; reading a job
    needs to own it or a reader group; cancelling or reprioritizing needs to own it or the admin group."""
    app = FastAPI(title="JUNO DCS transfer service (FTS3 REST compatible)", version="1.0")
    auth = config.auth
    if auth is None:
        logger.warning("token checks are off (auth: null): every caller may do everything")
        app.state.identities = None
    else:
        app.state.identities = IdentityCache(verifier or auth.verifier())
    keeper = TokenKeeper(Sealer(config.token_key_file), config.exchange)

    @contextmanager
    def transaction() -> Iterator[psycopg.Connection[db.Row]]:
        with pool.connection() as conn, conn.transaction():
            yield conn

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, f"{where}: {first.get('msg')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(JunoDcsError)
    async def _tree(_: Request, exc: JunoDcsError) -> JSONResponse:
        return _error(exc.http_status, str(exc))

    @app.get("/")
    def root() -> dict[str, Any]:
        return {"api": API_VERSION, "schema": API_VERSION, "delegation": API_VERSION,
                "service": "juno-dcs transfer service"}

    @app.get("/whoami")
    def whoami(who: Caller) -> dict[str, Any]:
        base = logic.base_id(who.subject)
        admin = auth is None or who.in_group(auth.admin_group)
        return {"dn": [who.subject], "user_dn": who.subject, "vos": [config.vo],
                "vos_id": [logic.base_id(config.vo)], "voms_cred": list(who.groups), "delegation_id": base[:16],
                "base_id": base, "method": "oauth2", "roles": list(who.groups), "is_root": admin,
                "scopes": [str(s) for s in who.scopes],
                "level": {"transfer": "all" if may_read_all(who, auth) else "own", "config": "none"}}

    @app.post("/jobs")
    async def submit(request: Request, who: Caller) -> JSONResponse:
        who.require_scope("fts", "submitting a transfer job")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _error(413, f"the submission is larger than {MAX_BODY} bytes")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"the body is not valid JSON: {exc}") from exc
        parsed = parse_submission(body)
        # exchanged for refresh tokens at the issuer (a round trip each, so out of the event loop)
        kept = await run_in_threadpool(keeper.keep_all, logic.tokens_of(parsed))
        with transaction() as conn:
            job_id = logic.submit(conn, parsed, who.subject, config, kept)
        logger.info("job %s submitted by %s (token %s)", job_id, who.subject, who.token_id)
        return JSONResponse({"job_id": job_id})

    @app.get("/jobs")
    def list_jobs(
        who: Caller,
        state_in: Annotated[str | None, Query(description="comma-separated job states")] = None,
        source_se: str | None = None,
        dest_se: str | None = None,
        vo_name: str | None = None,
        dlg_id: str | None = None,
        user_dn: str | None = None,
        time_window: Annotated[float | None, Query(gt=0, description="hours")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    ) -> list[dict[str, Any]]:
        states = [s.strip().upper() for s in state_in.split(",")] if state_in else None
        if not may_read_all(who, auth):  # the caller's own jobs only
            if user_dn not in (None, who.subject):
                raise PermissionDenied(f"{who.subject} may list only its own jobs, not {user_dn}'s")
            user_dn = who.subject
        with transaction() as conn:
            rows = db.list_jobs(conn, states, source_se, dest_se, vo_name, user_dn, time_window, limit)
        return [logic.job_json(r, None) for r in rows]

    @app.get("/jobs/{job_ids}")
    def get_jobs(job_ids: str, who: Caller, files: str | None = None) -> JSONResponse:
        ids = [j for j in job_ids.split(",") if j]
        fields = [f for f in files.split(",") if f] if files else None
        with transaction() as conn:
            found = logic.query(conn, ids, with_files=True, file_fields=fields)
        if not may_read_all(who, auth):
            found = [forbidden(j["job_id"]) if j.get("user_dn") not in (None, who.subject) else j for j in found]
        if len(ids) == 1 and found[0]["http_status"].startswith("403"):
            raise PermissionDenied(found[0]["http_message"])
        missing = sum(1 for j in found if j["http_status"] != "200 Ok")
        if len(ids) == 1:
            if missing:
                return _error(404, found[0]["http_message"])
            return JSONResponse(found[0])
        return JSONResponse(found, status_code=207 if missing else 200)

    @app.get("/jobs/{job_id}/files")
    def get_files(job_id: str, who: Caller) -> JSONResponse:
        with transaction() as conn:
            found = logic.query(conn, [job_id], with_files=True, file_fields=None)[0]
        if found["http_status"] != "200 Ok":
            return _error(404, found["http_message"])
        if found["user_dn"] != who.subject and not may_read_all(who, auth):
            raise PermissionDenied(forbidden(job_id)["http_message"])
        return JSONResponse(found["files"])

    @app.get("/jobs/{job_id}/dm")
    def get_dm(job_id: str, who: Caller) -> JSONResponse:
        """Data-management operations (deletions, staging-only jobs) of a job: this service runs none."""
        with transaction() as conn:
            jobs = db.get_jobs(conn, [job_id])
        if not jobs:
            raise logic.NotFound(f"No job with the id {job_id} has been found")
        if jobs[job_id]["user_dn"] != who.subject and not may_read_all(who, auth):
            raise PermissionDenied(forbidden(job_id)["http_message"])
        return JSONResponse([])

    @app.delete("/jobs/{job_ids}")
    def cancel(job_ids: str, who: Caller) -> JSONResponse:
        ids = [j for j in job_ids.split(",") if j]
        with transaction() as conn:
            owners = {j: row["user_dn"] for j, row in db.get_jobs(conn, ids).items()}
        out = []
        for job_id in ids:
            if job_id in owners and not may_change(who, owners[job_id], auth):
                out.append(forbidden(job_id))
                continue
            try:
                with transaction() as conn:
                    running = logic.cancel(conn, job_id)
            except logic.NotFound:
                out.append({"job_id": job_id, "http_status": "404 Not Found",
                            "http_message": f"No job with the id {job_id} has been found"})
                continue
            for row in running:  # copies still running: their results are dropped; remove what they left
                copier.remove_quietly(row["dest_surl"], token=keeper.token(row["dest_token"], CLEANUP_S))
            with transaction() as conn:
                out.append(logic.query(conn, [job_id], with_files=False, file_fields=None)[0])
        if len(ids) == 1:
            if out[0]["http_status"] != "200 Ok":
                return _error(int(out[0]["http_status"][:3]), out[0]["http_message"])
            return JSONResponse(out[0])
        return JSONResponse(out, status_code=207 if any(j["http_status"] != "200 Ok" for j in out) else 200)

    @app.post("/jobs/{job_id}")
    async def modify(job_id: str, request: Request, who: Caller) -> JSONResponse:
        try:
            body = json.loads(await request.body())
            priority = body["params"]["priority"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError('expected {"params": {"priority": N}}') from exc
        if not isinstance(priority, int) or not 1 <= priority <= 5:
            raise ConfigError(f"params.priority: {priority!r} is not an integer from 1 to 5")
        with transaction() as conn:
            jobs = db.get_jobs(conn, [job_id])
            if not jobs:
                raise logic.NotFound(f"No job with the id {job_id} has been found")
            if not may_change(who, jobs[job_id]["user_dn"], auth):
                raise PermissionDenied(forbidden(job_id)["http_message"])
            db.set_priority(conn, job_id, priority)
            return JSONResponse(logic.query(conn, [job_id], with_files=False, file_fields=None)[0])

    @app.get("/snapshot")
    def snapshot(who: Caller,
                 window: Annotated[float, Query(gt=0, le=86400, description="seconds")] = 300) -> dict[str, Any]:
        """Per link: active, queued, finished and failed transfers, throughput and success rate over the
        window, the optimizer's current limit and its last decision with the reason."""
        with transaction() as conn:
            rows = db.snapshot(conn, window)
        links = []
        for r in rows:
            done = int(r["finished"]) + int(r["failed"])
            links.append({
                "source_se": r["source_se"], "dest_se": r["dest_se"], "active": int(r["active"]),
                "queued": int(r["queued"]), "finished": int(r["finished"]), "failed": int(r["failed"]),
                "success_rate": (int(r["finished"]) / done) if done else None,
                "throughput_mb_s": float(r["bytes"]) / window / 1e6,
                "avg_file_throughput_mb_s": r["avg_file_throughput"], "active_limit": r["active_limit"],
                "last_decision": r["last_decision"],
            })
        return {"window_s": window, "links": links}

    @app.get("/optimizer/decisions")
    def decisions(who: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
        with transaction() as conn:
            return [{**r, "decided": r["decided"].isoformat()} for r in db.decisions(conn, limit)]

    return app
