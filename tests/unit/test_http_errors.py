"""Each service maps the error tree to HTTP in one handler, with the body its clients have always read:

    transfer service   {"status": "<code>", "message": ...}   (FTS3's; the fts3 client and Rucio's conveyor read it)
    dispatcher         {"detail": ...}
    conditions         {"status": <code>, "detail": ...} with Cache-Control: no-store (Retry-After when transient)
    dashboard          {"detail": ...}

The transfer service and the dispatcher run here on a fake connection pool whose queries find nothing (a real
PostgreSQL is the integration tests' job); real routes raise the errors, and one extra route per app raises each
class of the tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from juno_dcs import errors
from juno_dcs.conditions.config import ServiceConfig
from juno_dcs.conditions.db import make_engine
from juno_dcs.conditions.routes import create_app as conditions_app
from juno_dcs.packaged import data_file
from juno_dcs.tokens.config import ServiceAuth
from juno_dcs.tokens.sealed import ensure_key
from juno_dcs.tokens.verify import Verifier
from juno_dcs.transfer.config import TransferConfig
from juno_dcs.transfer.routes import create_app as transfer_app
from juno_dcs.wms.classify import load_error_rules
from juno_dcs.wms.logic import Context
from juno_dcs.wms.retry import load_rules
from juno_dcs.wms.routes import create_app as wms_app
from tests.tokens import LocalIssuer
from tests.unit.test_dashboard_service import client as dashboard_client

CLASSES = [(errors.ConfigError, 400), (errors.NotFound, 404), (errors.PermissionDenied, 403),
           (errors.Conflict, 409), (errors.ServiceError, 502), (errors.Unavailable, 503),
           (errors.ServiceTimeout, 504), (errors.JunoDcsError, 500)]


class _Nothing:
    """A cursor of a query that found nothing."""

    rowcount = 0

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []


class _Connection:
    def execute(self, *_: Any) -> _Nothing:
        return _Nothing()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield


class _EmptyPool:
    @contextmanager
    def connection(self) -> Iterator[_Connection]:
        yield _Connection()


def _raising(app: FastAPI) -> FastAPI:
    @app.get("/test/raise/{name}")
    def raise_it(name: str) -> None:
        raise next(cls for cls, _ in CLASSES if cls.__name__ == name)(f"a {name} happened")

    return app


@pytest.fixture
def transfer(tmp_path: Path) -> TestClient:
    """The transfer service with a local key for its issuer; every request carries an admin's token."""
    issuer = LocalIssuer()
    config = transfer_config(tmp_path, issuer)
    verifier = Verifier(issuer.issuer, tuple(config.auth.audiences), static_keys=issuer.keys)
    app = transfer_app(config, _EmptyPool(), verifier)  # type: ignore[arg-type]
    token = issuer.token("127.0.0.1", "root", "fts", ["/juno", "/juno/admin"])
    return TestClient(_raising(app), headers={"Authorization": f"Bearer {token}"})


def transfer_config(tmp_path: Path, issuer: LocalIssuer) -> TransferConfig:
    key = tmp_path / "token-key"
    ensure_key(key)
    return TransferConfig(database_url="postgresql://nobody@127.0.0.1:1/none", token_key_file=key,
                          auth=ServiceAuth(issuer=issuer.issuer, audiences=["127.0.0.1"]))


def test_a_transfer_service_with_checks_off_takes_every_caller_as_an_admin(tmp_path: Path) -> None:
    """`auth: null` (the token benchmarks' "off" side): no token needed, everything allowed, said at start."""
    key = tmp_path / "token-key"
    ensure_key(key)
    config = TransferConfig(database_url="postgresql://nobody@127.0.0.1:1/none", token_key_file=key, auth=None)
    client = TestClient(transfer_app(config, _EmptyPool()))  # type: ignore[arg-type]
    who = client.get("/whoami").json()
    assert (who["user_dn"], who["is_root"], who["scopes"], who["level"]["transfer"]) == ("anonymous", True, ["fts"],
                                                                                          "all")
    assert client.get("/jobs/nosuchjob").status_code == 404  # no 401: nobody is asked for a token


def test_the_transfer_services_auth_key_must_be_written_out(tmp_path: Path) -> None:
    """Token checks are never off by omission: `auth` has no default."""
    with pytest.raises(ValueError, match="auth"):
        TransferConfig(database_url="postgresql:///x", token_key_file=tmp_path / "k")  # type: ignore[call-arg]


@pytest.fixture
def wms() -> TestClient:
    classes = load_error_rules(data_file("wms-errors.yaml"))
    ctx = Context(queues={}, rules=load_rules(data_file("wms-retry.yaml"), classes), classes=classes, lease_s=60)
    return TestClient(_raising(wms_app(ctx, _EmptyPool(), None, None)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("cls", "status"), CLASSES, ids=[c.__name__ for c, _ in CLASSES])
def test_the_transfer_service_answers_each_class_in_fts3s_shape(transfer: TestClient, cls: type, status: int) -> None:
    reply = transfer.get(f"/test/raise/{cls.__name__}")
    body = {"status": str(status), "message": f"a {cls.__name__} happened"}
    assert (reply.status_code, reply.json()) == (status, body)


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), [
    ("GET", "/jobs/nosuchjob/dm", None, 404, "No job with the id nosuchjob has been found"),
    ("POST", "/jobs/nosuchjob", b'{"params": {"priority": 3}}', 404, "No job with the id nosuchjob has been found"),
    ("POST", "/jobs/nosuchjob", b'{"priority": 3}', 400, 'expected {"params": {"priority": N}}'),
    ("POST", "/jobs/nosuchjob", b'{"params": {"priority": 9}}', 400,
     "params.priority: 9 is not an integer from 1 to 5"),
    ("POST", "/jobs", b"{not json", 400, "the body is not valid JSON: "),
    ("POST", "/jobs", b"[]", 400, "the body must be a JSON object with 'files' and 'params'"),
    ("POST", "/jobs", b'{"files": [], "params": {}}', 400, "files: "),
    ("GET", "/jobs/nosuchjob", None, 404, "No job with the id nosuchjob has been found"),
    ("DELETE", "/jobs/nosuchjob", None, 404, "No job with the id nosuchjob has been found"),
])
def test_transfer_routes_refuse_as_before(transfer: TestClient, method: str, path: str, body: bytes | None,
                                          status: int, message: str) -> None:
    reply = transfer.request(method, path, content=body)
    assert reply.status_code == status, reply.text
    assert reply.json()["status"] == str(status)
    assert reply.json()["message"].startswith(message)
    assert set(reply.json()) == {"status", "message"}


@pytest.mark.parametrize(("cls", "status"), CLASSES, ids=[c.__name__ for c, _ in CLASSES])
def test_the_dispatcher_answers_each_class_with_a_detail(wms: TestClient, cls: type, status: int) -> None:
    reply = wms.get(f"/test/raise/{cls.__name__}")
    assert (reply.status_code, reply.json()) == (status, {"detail": f"a {cls.__name__} happened"})


@pytest.mark.parametrize(("path", "detail"), [("/v1/tasks/7", "task 7 does not exist"),
                                              ("/v1/jobs/8", "job 8 does not exist")])
def test_dispatcher_not_found_is_404_as_before(wms: TestClient, path: str, detail: str) -> None:
    reply = wms.get(path)
    assert (reply.status_code, reply.json()) == (404, {"detail": detail})


def test_conditions_answers_the_tree_with_its_body() -> None:
    app = _raising(conditions_app(ServiceConfig(database_url="sqlite://"), make_engine("sqlite://")))
    client = TestClient(app)
    for cls, status in CLASSES:
        reply = client.get(f"/test/raise/{cls.__name__}")
        assert (reply.status_code, reply.json()) == (status, {"status": status, "detail": f"a {cls.__name__} happened"})
        assert reply.headers["cache-control"] == "no-store"
        assert ("retry-after" in reply.headers) == (cls in (errors.Unavailable, errors.ServiceTimeout))


def test_dashboard_answers_the_tree_with_a_detail() -> None:
    client = dashboard_client()
    _raising(client.app)  # type: ignore[arg-type]
    for cls, status in CLASSES:
        reply = client.get(f"/test/raise/{cls.__name__}")
        assert (reply.status_code, reply.json()) == (status, {"detail": f"a {cls.__name__} happened"})
