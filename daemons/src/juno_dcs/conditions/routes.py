"""The read-only conditions API. Routes validate the path once (names, runs, hashes), call logic in one
read-only transaction, set the caching headers (conditions.caching) and map errors to HTTP codes:

    400  malformed tag, folder, run or hash (the reason says which)     404  unknown tag, folder, payload, run
    405  any method but GET                                              413  an IOV map over MAX_MAP_IOVS
    503  the database does not answer

    GET /v1/tags                                         the tags (short max-age)
    GET /v1/tags/{tag}                                   one tag with its folders
    GET /v1/tags/{tag}/iovs                              the tag's IOV map: every interval of every folder, oldest
                                                         first (the newest covering a run wins); one document per
                                                         tag whatever the run, so caches answer every run from it
    GET /v1/tags/{tag}/runs/{run}                        every folder's payload reference for a run
    GET /v1/tags/{tag}/folders/{folder}/runs/{run}       one folder's payload reference for a run
    GET /v1/payloads/{sha256}                            the payload's bytes (immutable)
    GET /v1/bundles/{sha256},{sha256}[,...]              2 to 12 payloads in one answer: their bytes one after
                                                         the other, in the path's order (immutable)
    GET /health                                          200 when the database answers, else 503
    GET /openapi.json                                    this API's OpenAPI description
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.engine import Connection, Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from juno_dcs.conditions import caching, logic
from juno_dcs.conditions.config import ServiceConfig
from juno_dcs.conditions.errors import DatabaseUnavailable
from juno_dcs.conditions.models import HASH_PATTERN, MAX_RUN, NAME_PATTERN, IovInfo, TagInfo
from juno_dcs.errors import JunoDcsError

logger = logging.getLogger(__name__)

TagName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64, description="a global tag")]
FolderName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64, description="a folder")]
RunNumber = Annotated[int, Path(ge=0, le=MAX_RUN, description="a run number")]
Digest = Annotated[str, Path(pattern=HASH_PATTERN, min_length=64, max_length=64, description="sha256, hex")]
MAX_BUNDLE = 12  # payloads in one bundle: its path stays under MAX_PATH
_HEX = HASH_PATTERN.strip("^$")
Digests = Annotated[str, Path(pattern=rf"^{_HEX}(,{_HEX}){{1,{MAX_BUNDLE - 1}}}$", max_length=65 * MAX_BUNDLE,
                              description=f"2 to {MAX_BUNDLE} sha256 (hex), comma-separated")]
_DB_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
MAX_PATH = 1024  # bytes of the request path; the longest valid one is about 220
MAX_HEADERS = 16 * 1024  # bytes of all request headers (Squid's request_header_max_size)


class ErrorAnswer(BaseModel):
    status: int
    detail: str


class PayloadRef(BaseModel):
    folder: str
    payload_type: str
    first_run: int
    last_run: int
    payload_hash: str
    payload_size: int
    payload_url: str


class IovAnswer(BaseModel):
    tag: str
    tag_state: str
    run: int
    payload: PayloadRef


class RunAnswer(BaseModel):
    tag: str
    tag_state: str
    run: int
    folders: dict[str, PayloadRef]


class FolderMap(BaseModel):
    payload_type: str
    iovs: list[tuple[int, int, str, int]]  # first_run, last_run, payload_hash, payload_size


class MapAnswer(BaseModel):
    tag: str
    tag_state: str
    folders: dict[str, FolderMap]


class TagAnswer(BaseModel):
    name: str
    state: str
    description: str
    created: str
    modified: str
    locked: str | None
    folders: list[dict[str, Any]] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorAnswer, "description": "malformed tag, folder, run or hash"},
    404: {"model": ErrorAnswer, "description": "unknown tag, folder or payload, or no interval covers the run"},
    503: {"model": ErrorAnswer, "description": "the database does not answer"},
}


def _error(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"status": status, "detail": detail}, status_code=status,
                        headers={"Cache-Control": caching.NO_STORE, **headers})


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _ref(iov: IovInfo) -> dict[str, Any]:
    return {**iov.model_dump(), "payload_url": f"/v1/payloads/{iov.payload_hash}"}


def _tag_json(tag: TagInfo) -> dict[str, Any]:
    return {"name": tag.name, "state": tag.state, "description": tag.description,
            "created": tag.created.isoformat(), "modified": tag.modified.isoformat(),
            "locked": tag.locked.isoformat() if tag.locked else None}


def create_app(config: ServiceConfig, engine: Engine) -> FastAPI:
    app = FastAPI(title="JUNO DCS conditions service", version="1.0",
                  description="Read-only condition data with cacheable URLs (put Squid in front).")

    @contextmanager
    def reading() -> Iterator[Connection]:
        try:
            with engine.connect() as conn:
                yield conn
        except _DB_ERRORS as exc:
            raise DatabaseUnavailable(f"the conditions database does not answer: {exc.__class__.__name__}") from exc

    def cached(request: Request, body: bytes, tag: TagInfo) -> Response:
        """A tag-dependent answer with its caching headers, or 304 when the client's copy is current."""
        etag = caching.etag_of(body)
        headers = {"Cache-Control": caching.cache_control_for_tag(tag.state, config), "ETag": etag,
                   "Last-Modified": caching.last_modified(tag.modified, dt.datetime.now(dt.UTC))}
        if caching.not_modified(request.headers.get("if-none-match"), request.headers.get("if-modified-since"),
                                etag, tag.modified):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @app.middleware("http")
    async def _limits(request: Request, call_next: Any) -> Response:
        """Refuse what no valid request has: a long path, a query string (every URL here is a cache key:
        a query would only bust the caches), oversized headers."""
        if len(request.scope.get("raw_path", b"")) > MAX_PATH:
            return _error(414, f"the request path is longer than {MAX_PATH} bytes")
        if request.scope.get("query_string"):
            return _error(400, "this API takes no query parameters")
        if sum(len(k) + len(v) for k, v in request.scope.get("headers", [])) > MAX_HEADERS:
            return _error(431, f"the request headers are larger than {MAX_HEADERS} bytes")
        response: Response = await call_next(request)
        return response

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        value = str(first.get("input", ""))
        shown = value if len(value) <= 80 else value[:80] + f"... ({len(value)} characters)"
        return _error(400, f"{where} {shown!r}: {first.get('msg')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = {"Allow": "GET"} if exc.status_code == 405 else {}
        return _error(exc.status_code, str(exc.detail), **headers)

    @app.exception_handler(JunoDcsError)
    async def _tree(_: Request, exc: JunoDcsError) -> JSONResponse:
        """The project's error tree: NotFound 404, ConditionsInputError 400, DatabaseUnavailable 503 (with
        Retry-After: a transient error is worth asking again)."""
        if not exc.transient:
            return _error(exc.http_status, str(exc))
        logger.warning("%s", exc)
        return _error(exc.http_status, str(exc), **{"Retry-After": "5"})

    @app.get("/health", responses={503: ERRORS[503]})
    def health() -> JSONResponse:
        with reading() as conn:
            conn.execute(sa.text("SELECT 1"))
        return JSONResponse({"status": "ok", "database": "ok"}, headers={"Cache-Control": caching.NO_STORE})

    @app.get("/v1/tags", response_model=list[TagAnswer], responses={503: ERRORS[503]})
    def list_tags() -> Response:
        with reading() as conn:
            tags = logic.list_tags(conn)
        return Response(_json_bytes([_tag_json(t) for t in tags]), media_type="application/json",
                        headers={"Cache-Control": f"public, max-age={config.open_max_age}"})

    @app.get("/v1/tags/{tag}", response_model=TagAnswer, responses=ERRORS)
    def get_tag(request: Request, tag: TagName) -> Response:
        with reading() as conn:
            details = logic.show_tag(conn, tag)
        folders = [{"name": f["name"], "payload_type": f["payload_type"], "iovs": int(f["iovs"]),
                    "first_run": f["first_run"], "last_run": f["last_run"]} for f in details.folders]
        return cached(request, _json_bytes({**_tag_json(details.tag), "folders": folders}), details.tag)

    @app.get("/v1/tags/{tag}/iovs", response_model=MapAnswer, responses={
        **ERRORS, 413: {"model": ErrorAnswer, "description": "more intervals than one map carries"}})
    def tag_map(request: Request, tag: TagName) -> Response:
        with reading() as conn:
            info, found = logic.iov_map(conn, tag)
        folders: dict[str, dict[str, Any]] = {}
        for iov in found:
            entry = folders.setdefault(iov.folder, {"payload_type": iov.payload_type, "iovs": []})
            entry["iovs"].append([iov.first_run, iov.last_run, iov.payload_hash, iov.payload_size])
        return cached(request, _json_bytes({"tag": info.name, "tag_state": info.state, "folders": folders}), info)

    @app.get("/v1/tags/{tag}/runs/{run}", response_model=RunAnswer, responses=ERRORS)
    def run_conditions(request: Request, tag: TagName, run: RunNumber) -> Response:
        with reading() as conn:
            info, found = logic.lookup_all(conn, tag, run)
        body = {"tag": info.name, "tag_state": info.state, "run": run, "folders": {i.folder: _ref(i) for i in found}}
        return cached(request, _json_bytes(body), info)

    @app.get("/v1/tags/{tag}/folders/{folder}/runs/{run}", response_model=IovAnswer, responses=ERRORS)
    def folder_conditions(request: Request, tag: TagName, folder: FolderName, run: RunNumber) -> Response:
        with reading() as conn:
            info, iov = logic.lookup(conn, tag, folder, run)
        body = {"tag": info.name, "tag_state": info.state, "run": run, "payload": _ref(iov)}
        return cached(request, _json_bytes(body), info)

    @app.get("/v1/payloads/{digest}", response_class=Response, responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the payload's bytes"}, **ERRORS})
    def payload(request: Request, digest: Digest) -> Response:
        etag = f'"{digest}"'
        headers = {"Cache-Control": caching.cache_control_for_payload(config), "ETag": etag}
        if etag in (request.headers.get("if-none-match") or ""):
            return Response(status_code=304, headers=headers)  # content-addressed: no need to ask the database
        with reading() as conn:
            data = logic.get_payload(conn, digest)
        return Response(data, media_type="application/octet-stream", headers=headers)

    @app.get("/v1/bundles/{digests}", response_class=Response, responses={
        200: {"content": {"application/octet-stream": {}},
              "description": "the payloads' bytes one after the other, in the order of the path "
                             "(X-Payload-Sizes lists their sizes)"}, **ERRORS})
    def bundle(request: Request, digests: Digests) -> Response:
        """Several payloads in one round trip (a job's cold read), in the order of the path. The client puts the
        hashes in ascending order, so that every job that needs the same set asks the same URL (one cache entry)."""
        hashes = digests.split(",")
        etag = caching.etag_of(digests.encode())
        headers = {"Cache-Control": caching.cache_control_for_payload(config), "ETag": etag}
        if caching.etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)  # content-addressed, as a single payload
        with reading() as conn:
            data = logic.get_payloads(conn, hashes)
        headers["X-Payload-Sizes"] = ",".join(str(len(d)) for d in data)
        return Response(b"".join(data), media_type="application/octet-stream", headers=headers)

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's description without its 422 answers: validation errors are 400 here."""
        schema = default_openapi()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
