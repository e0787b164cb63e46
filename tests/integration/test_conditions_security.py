"""The conditions service and its Squid refuse what they must, write nothing, and survive a fuzzer driven by the
service's own OpenAPI description (schemathesis)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import sqlalchemy as sa

from tests.integration.conditions_stack import Stack, build_tag, stack

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


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def origin(self) -> str:
        """Who answered: the service's routes (JSON with its status), uvicorn's HTTP parser before any route ran,
        or Squid itself (its error page, named in X-Squid-Error)."""
        if "x-squid-error" in self.headers:
            return "squid:" + self.headers["x-squid-error"].split()[0]
        if self.body == b"Invalid HTTP request received.":
            return "uvicorn"
        assert json.loads(self.body)["status"] == self.status, self.body[:200]
        return "service"


def _raw(url: str, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
    """One request with the path exactly as given (no client-side normalisation). A connection closed without an
    answer raises: a refusal is an HTTP status, never a silence."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.endheaders()
        reply = conn.getresponse()
        return Answer(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
    finally:
        conn.close()


def _still_answers(stack: Stack) -> None:
    """The service and the Squid in front of it are alive after a bad request."""
    for base in (stack.service.url, stack.squids["IHEP"].url):
        assert requests.get(f"{base}/health", timeout=10).status_code == 200, base


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("attempt", INJECTIONS)
def test_sql_injection_refused(stack: Stack, tag: str, attempt: str) -> None:
    """Every injection is refused by validation of the path parameter it sits in (400 naming it), straight and
    through Squid, before any query runs."""
    quoted = requests.utils.quote(attempt, safe="")
    paths = {"tag": f"/v1/tags/{quoted}/runs/1500", "folder": f"/v1/tags/{tag}/folders/{quoted}/runs/1500",
             "run": f"/v1/tags/{tag}/runs/{quoted}", "digest": f"/v1/payloads/{quoted}"}
    for base in (stack.service.url, stack.squids["IHEP"].url):
        for param, path in paths.items():
            reply = requests.get(base + path, timeout=10)
            assert reply.status_code == 400, (path, reply.status_code, reply.text[:200])
            assert reply.json()["detail"].startswith(f"path.{param} "), (path, reply.text[:200])
    _still_answers(stack)


def test_reader_account_cannot_write(stack: Stack) -> None:
    engine = sa.create_engine(stack.db.reader_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn, pytest.raises(sa.exc.DBAPIError, match="denied"):
            conn.execute(sa.text("INSERT INTO cond_folders (name, payload_type, description) "
                                 "VALUES ('evil', 'json', '')"))
    finally:
        engine.dispose()


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(("path", "status"), [
    ("/v1/payloads/../../../../etc/passwd", 404), ("/../../../etc/passwd", 404),
    ("/v1/payloads/..%2F..%2F..%2Fetc%2Fpasswd", 404), ("/%2e%2e/%2e%2e/etc/passwd", 404),
    ("/v1/tags/..%2f..%2f/runs/1", 404), ("/v1/payloads/%00", 400), ("//etc/passwd", 404)])
def test_path_traversal_refused(stack: Stack, path: str, status: int) -> None:
    """No route matches a traversal (404); a NUL digest fails validation (400). Squid passes each on and returns
    the service's own answer."""
    for base in (stack.service.url, stack.squids["IHEP"].url):
        reply = _raw(base, "GET", path)
        assert (reply.status, reply.origin) == (status, "service"), (base, path, reply.status, reply.body[:200])
        assert b"root:" not in reply.body
        _still_answers(stack)


@pytest.mark.usefixtures("nothing_written")
def test_huge_parameters_refused(stack: Stack, tag: str) -> None:
    """Who refuses what, and with which status: the service's limits (414 for a path over 1024 bytes, 431 for
    headers over 16 KiB) when uvicorn's parser (httptools) lets the request through; that parser itself (400
    "Invalid HTTP request received.") for a request line of 80 KB or more; Squid (414, 431: ERR_TOO_BIG) for what
    is over its own limits, before the service sees it."""
    cases: list[tuple[str, dict[str, str], tuple[int, str], tuple[int, str]]] = [
        (f"/v1/tags/{'A' * 100_000}/runs/1", {}, (400, "uvicorn"), (414, "squid:ERR_TOO_BIG")),
        (f"/v1/tags/{tag}/runs/{'9' * 5000}", {}, (414, "service"), (414, "service")),
        (f"/v1/tags/{tag}/folders/{'f' * 3000}/runs/1", {}, (414, "service"), (414, "service")),
        (f"/v1/tags/{tag}/runs/1500", {"X-Big": "x" * 70_000}, (431, "service"), (431, "squid:ERR_TOO_BIG")),
        (f"/v1/tags/{tag}/runs/1500?{'q=1&' * 20_000}", {}, (400, "uvicorn"), (414, "squid:ERR_TOO_BIG")),
    ]
    for path, headers, straight, via_squid in cases:
        for base, expected in ((stack.service.url, straight), (stack.squids["IHEP"].url, via_squid)):
            reply = _raw(base, "GET", path, headers)
            assert (reply.status, reply.origin) == expected, (base, path[:60], reply.status, reply.body[:200])
            _still_answers(stack)
    reply = _raw(stack.service.url, "GET", f"/v1/tags/{tag}/runs/1500?q=1")
    assert (reply.status, json.loads(reply.body)["detail"]) == (400, "this API takes no query parameters")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PURGE", "FOO"])
def test_unknown_methods_refused(stack: Stack, tag: str, method: str) -> None:
    """The service: 405 with `Allow: GET` for every HTTP method but GET, and uvicorn's parser 400 for a method
    that is not HTTP. Squid lets only GET and HEAD through (403 from its access rules) and answers CONNECT to
    an origin-server URL with 405 (ERR_UNSUP_REQ)."""
    straight = (400, "uvicorn") if method == "FOO" else (405, "service")
    via_squid = (405, "squid:ERR_UNSUP_REQ") if method == "CONNECT" else (403, "squid:ERR_ACCESS_DENIED")
    for base, expected in ((stack.service.url, straight), (stack.squids["IHEP"].url, via_squid)):
        for path in (f"/v1/tags/{tag}/runs/1500", "/v1/tags", "/health"):
            reply = _raw(base, method, path, {"Content-Length": "0"})
            assert (reply.status, reply.origin) == expected, (base, method, path, reply.status, reply.body[:200])
            if expected == (405, "service"):
                assert reply.headers["allow"] == "GET"
    _still_answers(stack)
    assert requests.get(f"{stack.squids['IHEP'].url}/v1/tags/{tag}/runs/1500", timeout=10).status_code == 200


@pytest.mark.usefixtures("nothing_written")
def test_fuzz_against_own_openapi(stack: Stack) -> None:
    """Every operation of the service's OpenAPI description, with generated inputs, straight and through
    Squid: no 5xx, only documented status codes, answers that match their schemas."""
    api = schemathesis.openapi.from_url(f"{stack.service.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 8
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
    assert set(paths) == {"/health", "/v1/tags", "/v1/tags/{tag}", "/v1/tags/{tag}/iovs", "/v1/tags/{tag}/runs/{run}",
                          "/v1/tags/{tag}/folders/{folder}/runs/{run}", "/v1/payloads/{digest}",
                          "/v1/bundles/{digests}"}
