"""The conditions API on SQLite through FastAPI's TestClient: answers, caching headers, 304s, refusals, 503."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from juno_dcs.conditions import caching, db, logic
from juno_dcs.conditions.config import ServiceConfig
from juno_dcs.conditions.models import FolderInfo, RunRange, payload_hash
from juno_dcs.conditions.routes import create_app

A = b'{"pe_per_mev": 1600}'
CONFIG = ServiceConfig(database_url="sqlite://", open_max_age=7, locked_max_age=1000, payload_max_age=99999)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False})
    with engine.begin() as conn:
        db.create_schema(conn)
        for tag in ("OPEN", "LOCKED"):
            logic.create_tag(conn, tag)
            logic.add_payload(conn, tag, FolderInfo(name="energy_scale", payload_type="energy_scale"),
                              RunRange(first=0, last=100), A)
        logic.lock_tag(conn, "LOCKED")
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine: Engine) -> TestClient:
    return TestClient(create_app(CONFIG, engine))


def test_lookup_of_an_open_tag(client: TestClient) -> None:
    reply = client.get("/v1/tags/OPEN/folders/energy_scale/runs/5")
    assert reply.status_code == 200
    assert reply.headers["cache-control"] == "public, max-age=7, stale-if-error=86400"
    assert "last-modified" in reply.headers
    assert reply.json()["payload"]["payload_hash"] == payload_hash(A)
    assert reply.json()["tag_state"] == "open"


def test_lookup_of_a_locked_tag(client: TestClient) -> None:
    reply = client.get("/v1/tags/LOCKED/runs/5")
    assert reply.headers["cache-control"].startswith("public, max-age=1000")
    assert list(reply.json()["folders"]) == ["energy_scale"]


def test_revalidation_answers_304(client: TestClient) -> None:
    first = client.get("/v1/tags/OPEN/runs/5")
    again = client.get("/v1/tags/OPEN/runs/5", headers={"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    other = client.get("/v1/tags/OPEN/runs/5", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


def test_open_tag_change_changes_the_etag(client: TestClient, engine: Engine) -> None:
    first = client.get("/v1/tags/OPEN/runs/5")
    with engine.begin() as conn:
        logic.add_payload(conn, "OPEN", FolderInfo(name="energy_scale", payload_type="energy_scale"),
                          RunRange(first=5, last=5), b'{"pe_per_mev": 1}')
    again = client.get("/v1/tags/OPEN/runs/5", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 200
    assert again.json()["folders"]["energy_scale"]["first_run"] == 5


def test_the_iov_map_of_a_tag(client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every interval, oldest first, cached like the tag's other answers; 404 for an unknown tag; 413 (not
    cacheable) beyond the limit, naming the per-run route."""
    with engine.begin() as conn:
        logic.add_payload(conn, "OPEN", FolderInfo(name="energy_scale", payload_type="energy_scale"),
                          RunRange(first=5, last=5), b'{"pe_per_mev": 1}')
    reply = client.get("/v1/tags/OPEN/iovs")
    assert reply.status_code == 200
    assert reply.headers["cache-control"] == "public, max-age=7, stale-if-error=86400"
    assert reply.json() == {"tag": "OPEN", "tag_state": "open", "folders": {"energy_scale": {
        "payload_type": "energy_scale",
        "iovs": [[0, 100, payload_hash(A), len(A)], [5, 5, payload_hash(b'{"pe_per_mev": 1}'), 17]]}}}
    locked = client.get("/v1/tags/LOCKED/iovs")
    assert locked.headers["cache-control"].startswith("public, max-age=1000")
    again = client.get("/v1/tags/LOCKED/iovs", headers={"If-None-Match": locked.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/v1/tags/NOPE/iovs").status_code == 404
    monkeypatch.setattr(logic, "MAX_MAP_IOVS", 1)
    big = client.get("/v1/tags/OPEN/iovs")
    assert big.status_code == 413
    assert big.headers["cache-control"] == "no-store"
    assert "more than 1 intervals" in big.json()["detail"]
    assert "/runs/{run}" in big.json()["detail"]


def test_payload_by_hash(client: TestClient) -> None:
    digest = payload_hash(A)
    reply = client.get(f"/v1/payloads/{digest}")
    assert (reply.status_code, reply.content) == (200, A)
    assert reply.headers["etag"] == f'"{digest}"'
    assert reply.headers["cache-control"] == "public, max-age=99999, immutable"
    assert client.get(f"/v1/payloads/{digest}", headers={"If-None-Match": f'"{digest}"'}).status_code == 304
    assert client.get(f"/v1/payloads/{payload_hash(b'none')}").status_code == 404


def test_bundle_of_payloads(client: TestClient, engine: Engine) -> None:
    """Several payloads in one answer, in the order of the path, immutable like one payload."""
    b, c = b'{"pe_per_mev": 1}', b"\x00binary\xff"
    with engine.begin() as conn:
        for data in (b, c):
            db.insert_payload(conn, payload_hash(data), data, dt.datetime.now(dt.UTC))
    ordered = sorted([(payload_hash(d), d) for d in (A, b, c)])
    path = "/v1/bundles/" + ",".join(h for h, _ in ordered)
    reply = client.get(path)
    assert (reply.status_code, reply.content) == (200, b"".join(d for _, d in ordered))
    assert reply.headers["x-payload-sizes"] == ",".join(str(len(d)) for _, d in ordered)
    assert reply.headers["cache-control"] == "public, max-age=99999, immutable"
    assert client.get(path, headers={"If-None-Match": reply.headers["etag"]}).status_code == 304
    backwards = client.get("/v1/bundles/" + ",".join(h for h, _ in reversed(ordered)))
    assert backwards.content == b"".join(d for _, d in reversed(ordered))  # the path's order (the client sorts)
    assert client.get(f"/v1/bundles/{ordered[0][0]},{ordered[0][0]}").content == ordered[0][1] * 2
    unknown = payload_hash(b"none")
    missing = client.get("/v1/bundles/" + ",".join(sorted([unknown, ordered[0][0]])))
    assert (missing.status_code, missing.json()["detail"]) == (404, f"no payload with sha256 {unknown}")
    assert client.get(f"/v1/bundles/{ordered[0][0]}").status_code == 400  # one alone: /v1/payloads/
    assert client.get("/v1/bundles/" + ",".join([ordered[0][0]] * 13)).status_code == 400  # more than 12


@pytest.mark.parametrize(("path", "status", "reason"), [
    ("/v1/tags/NOPE/runs/5", 404, "unknown global tag 'NOPE'"),
    ("/v1/tags/OPEN/folders/gains/runs/5", 404, "unknown folder 'gains'"),
    ("/v1/tags/OPEN/folders/energy_scale/runs/500", 404, "covers run 500"),
    ("/v1/tags/OPEN/runs/abc", 400, "run"),
    ("/v1/tags/OPEN/runs/-1", 400, "greater than or equal to 0"),
    ("/v1/tags/OPEN/runs/99999999999999999999", 400, "less than or equal to 2147483647"),
    ("/v1/tags/x'%20OR%20'1'='1/runs/5", 400, "tag"),
    ("/v1/tags/" + "A" * 500 + "/runs/5", 400, "500 characters"),
    ("/v1/tags/" + "A" * 5000 + "/runs/5", 414, "longer than 1024 bytes"),
    ("/v1/tags/OPEN/runs/5?nocache=1", 400, "no query parameters"),
    ("/v1/payloads/..%2F..%2Fetc%2Fpasswd", 404, "Not Found"),
    ("/v1/payloads/abc", 400, "digest"),
])
def test_refusals_say_why(client: TestClient, path: str, status: int, reason: str) -> None:
    reply = client.get(path)
    assert reply.status_code == status, reply.text
    assert reason in reply.json()["detail"]
    assert reply.headers["cache-control"] == "no-store"


def test_huge_headers_refused(client: TestClient) -> None:
    reply = client.get("/v1/tags/OPEN/runs/5", headers={"X-Big": "x" * 20000})
    assert reply.status_code == 431


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get(client: TestClient, method: str) -> None:
    reply = client.request(method, "/v1/tags/OPEN/runs/5")
    assert reply.status_code == 405
    assert reply.headers["allow"] == "GET"


def test_database_down_is_503() -> None:
    dead = db.make_engine("mysql+pymysql://nobody:x@127.0.0.1:9/none", timeout=1)
    client = TestClient(create_app(CONFIG, dead))
    for path in ("/health", "/v1/tags/OPEN/runs/5"):
        reply = client.get(path)
        assert reply.status_code == 503
        assert reply.headers["retry-after"] == "5"
        assert "does not answer" in reply.json()["detail"]


def test_openapi_has_no_422(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    codes = {code for ops in schema["paths"].values() for op in ops.values() for code in op["responses"]}
    assert "422" not in codes
    assert {"200", "400", "404", "503"} <= codes


# --- the caching rules as functions
T0 = dt.datetime(2026, 11, 25, 12, 0, 0, 300000, tzinfo=dt.UTC)


def test_last_modified_is_never_ahead_of_now() -> None:
    assert caching.last_modified(T0, T0) == "Wed, 25 Nov 2026 12:00:00 GMT"
    assert caching.last_modified(T0, T0 + dt.timedelta(seconds=5)) == "Wed, 25 Nov 2026 12:00:01 GMT"


def test_if_modified_since_never_hides_a_change() -> None:
    """An answer made within the second of the change is not revalidated by date; a later one is, until the
    next change."""
    made_early = caching.last_modified(T0, T0 + dt.timedelta(milliseconds=200))
    assert not caching.not_modified(None, made_early, '"e"', T0)
    made_late = caching.last_modified(T0, T0 + dt.timedelta(seconds=3))
    assert caching.not_modified(None, made_late, '"e"', T0)
    changed = T0 + dt.timedelta(seconds=1)  # within the second after the answer
    assert not caching.not_modified(None, made_late, '"e"', changed)


def test_if_none_match_decides_when_present() -> None:
    late = caching.last_modified(T0, T0 + dt.timedelta(seconds=3))
    assert not caching.not_modified('"other"', late, '"e"', T0)
    assert caching.not_modified('W/"e", "f"', None, '"e"', T0)
    assert not caching.not_modified(None, "not a date", '"e"', T0)
