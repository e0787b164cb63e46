"""The conditions service and its Squid refuse what they must, write nothing, and survive a fuzzer driven by the
service's own OpenAPI description (schemathesis)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import sqlalchemy as sa

from tests.integration.conditions_stack import Stack, build_tag, needs_stack, stack

pytestmark = [needs_stack]
__all__ = ["stack"]  # the fixture

INJECTIONS = [
    "x' OR '1'='1", "x'; DROP TABLE cond_tags; --", 'x" OR 1=1 --', "x%27%20OR%201=1", "1 UNION SELECT data FROM "
    "cond_payloads", "x`; DELETE FROM cond_iovs; #", "x\\'; SELECT SLEEP(5); --",
]


@pytest.fixture(scope="module")
def tag(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_tag(stack.db, tmp_path_factory.mktemp("tags"))[0]


@pytest.fixture
def nothing_written(stack: Stack) -> Iterator[None]:
    before = stack.db.counts()
    yield
    assert stack.db.counts() == before


def _raw(url: str, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request with the path exactly as given (no client-side normalisation)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.endheaders()
        reply = conn.getresponse()
        return reply.status, reply.read()
    except (ConnectionError, http.client.RemoteDisconnected):
        return 400, b""  # the server closed the connection: refused too
    finally:
        conn.close()


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("attempt", INJECTIONS)
def test_sql_injection_refused(stack: Stack, tag: str, attempt: str) -> None:
    quoted = requests.utils.quote(attempt, safe="")
    paths = [f"/v1/tags/{quoted}/runs/1500", f"/v1/tags/{tag}/folders/{quoted}/runs/1500",
             f"/v1/tags/{tag}/runs/{quoted}", f"/v1/payloads/{quoted}"]
    for base in (stack.service.url, stack.squids["IHEP"].url):
        for path in paths:
            reply = requests.get(base + path, timeout=10)
            assert reply.status_code in (400, 404), (path, reply.status_code, reply.text[:200])
            assert "payload_hash" not in reply.text


def test_reader_account_cannot_write(stack: Stack) -> None:
    engine = sa.create_engine(stack.db.reader_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn, pytest.raises(sa.exc.DBAPIError, match="denied"):
            conn.execute(sa.text("INSERT INTO cond_folders (name, payload_type, description) "
                                 "VALUES ('evil', 'json', '')"))
    finally:
        engine.dispose()


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("path", ["/v1/payloads/../../../../etc/passwd", "/../../../etc/passwd",
                                  "/v1/payloads/..%2F..%2F..%2Fetc%2Fpasswd", "/%2e%2e/%2e%2e/etc/passwd",
                                  "/v1/tags/..%2f..%2f/runs/1", "/v1/payloads/%00", "//etc/passwd"])
def test_path_traversal_refused(stack: Stack, path: str) -> None:
    for base in (stack.service.url, stack.squids["IHEP"].url):
        status, body = _raw(base, "GET", path)
        assert 400 <= status < 500, (base, path, status)
        assert b"root:" not in body


@pytest.mark.usefixtures("nothing_written")
def test_huge_parameters_refused(stack: Stack, tag: str) -> None:
    cases: list[tuple[str, dict[str, str]]] = [
        (f"/v1/tags/{'A' * 100_000}/runs/1", {}),
        (f"/v1/tags/{tag}/runs/{'9' * 5000}", {}),
        (f"/v1/tags/{tag}/folders/{'f' * 3000}/runs/1", {}),
        (f"/v1/tags/{tag}/runs/1500", {"X-Big": "x" * 70_000}),
        (f"/v1/tags/{tag}/runs/1500?{'q=1&' * 20_000}", {}),
    ]
    for base in (stack.service.url, stack.squids["IHEP"].url):
        for path, headers in cases:
            status, _ = _raw(base, "GET", path, headers)
            assert 400 <= status < 500, (base, path[:60], status)


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PURGE", "FOO"])
def test_unknown_methods_refused(stack: Stack, tag: str, method: str) -> None:
    for base in (stack.service.url, stack.squids["IHEP"].url):
        for path in (f"/v1/tags/{tag}/runs/1500", "/v1/tags", "/health"):
            status, _ = _raw(base, method, path, {"Content-Length": "0"})
            assert 400 <= status < 500, (base, method, path, status)
    assert requests.get(f"{stack.squids['IHEP'].url}/v1/tags/{tag}/runs/1500", timeout=10).status_code == 200


@pytest.mark.usefixtures("nothing_written")
def test_fuzz_against_own_openapi(stack: Stack) -> None:
    """Every operation of the service's OpenAPI description, with generated inputs, straight and through
    Squid: no 5xx, only documented status codes, answers that match their schemas."""
    api = schemathesis.openapi.from_url(f"{stack.service.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 6
    for operation in operations:
        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(max_examples=25, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))
        def fuzz(case: Any) -> None:
            for base in (stack.service.url, stack.squids["IHEP"].url):
                case.call_and_validate(base_url=base)

        fuzz()


def test_openapi_lists_every_route(stack: Stack) -> None:
    paths = requests.get(f"{stack.service.url}/openapi.json", timeout=10).json()["paths"]
    assert set(paths) == {"/health", "/v1/tags", "/v1/tags/{tag}", "/v1/tags/{tag}/runs/{run}",
                          "/v1/tags/{tag}/folders/{folder}/runs/{run}", "/v1/payloads/{digest}"}
