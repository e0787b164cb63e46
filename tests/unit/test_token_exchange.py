"""The issuer's token exchange and refresh grants (juno_dcs.issuer.exchange), through its Flask app: what a
service acting for a token's subject gets, and everything it is refused."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from juno_dcs.issuer.app import create_app
from juno_dcs.issuer.exchange import ACCESS_TOKEN_TYPE, GRANT_TYPE, REFRESH_TOKEN_TYPE
from juno_dcs.issuer.registry import secret_digest

ALICE = {"client_id": "alice", "secret_sha256": secret_digest("a"), "subject": "alice", "groups": ["/juno"],
         "scopes": ["storage.read:/", "storage.modify:/user/alice", "storage.create:/user/alice", "fts"],
         "audiences": ["localhost", "127.0.0.1"]}
FTS = {"client_id": "fts", "secret_sha256": secret_digest("f"), "subject": "fts", "exchange": True,
       "lifetime": 600}
OTHER = {"client_id": "other", "secret_sha256": secret_digest("o"), "subject": "other", "exchange": True}
PLAIN = {"client_id": "plain", "secret_sha256": secret_digest("p"), "subject": "plain"}


def _issuer(tmp_path: Path, name: str, issuer: str = "https://issuer.test/") -> Any:
    folder = tmp_path / name
    folder.mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "clients.yaml").write_text(yaml.safe_dump({"clients": [ALICE, FTS, OTHER, PLAIN]}))
    (folder / "issuer.yaml").write_text(yaml.safe_dump({"issuer": issuer, "key_file": str(folder / "key.pem"),
                                                        "clients_file": str(folder / "clients.yaml"),
                                                        "refresh_lifetime": 7200}))
    return create_app(str(folder / "issuer.yaml")).test_client()


@pytest.fixture
def issuer(tmp_path: Path) -> Any:
    return _issuer(tmp_path, "grid")


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _part(token: str, index: int) -> dict[str, Any]:
    text = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))  # type: ignore[no-any-return]


def _alice_token(issuer: Any, **form: str) -> str:
    reply = issuer.post("/token", data={"grant_type": "client_credentials", "audience": "localhost 127.0.0.1",
                                        "scope": "storage.read:/ storage.modify:/user/alice fts", **form},
                        headers=_basic("alice", "a"))
    assert reply.status_code == 200, reply.json
    return str(reply.json["access_token"])


def _exchange(issuer: Any, subject_token: str, client: tuple[str, str] = ("fts", "f"), **form: str) -> Any:
    return issuer.post("/token", data={"grant_type": GRANT_TYPE, "subject_token": subject_token,
                                       "subject_token_type": ACCESS_TOKEN_TYPE, **form}, headers=_basic(*client))


def _refresh(issuer: Any, refresh_token: str, client: tuple[str, str] = ("fts", "f"), **form: str) -> Any:
    return issuer.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token, **form},
                       headers=_basic(*client))


def test_discovery_names_the_exchange_and_refresh_grants(issuer: Any) -> None:
    grants = issuer.get("/.well-known/openid-configuration").json["grant_types_supported"]
    assert {GRANT_TYPE, "refresh_token", "client_credentials"} <= set(grants)


def test_an_exchange_gives_the_subjects_token_and_a_refresh_token_to_the_service(issuer: Any) -> None:
    original = _alice_token(issuer)
    reply = _exchange(issuer, original)
    assert reply.status_code == 200, reply.json
    assert reply.json["issued_token_type"] == REFRESH_TOKEN_TYPE
    got, was = _part(reply.json["access_token"], 1), _part(original, 1)
    assert (got["sub"], got["aud"], got["scope"], got["wlcg.groups"]) == \
        ("alice", ["localhost", "127.0.0.1"], was["scope"], ["/juno"])
    assert got["act"] == {"sub": "fts"}
    assert got["exp"] - got["iat"] == 600  # the exchanging client's lifetime
    refresh = reply.json["refresh_token"]
    assert _part(refresh, 0)["typ"] == "juno-refresh+jwt"
    assert _part(refresh, 1)["aud"] == "https://issuer.test/"
    assert _part(refresh, 1)["exp"] - _part(refresh, 1)["iat"] == 7200

    again = _refresh(issuer, refresh)
    assert again.status_code == 200, again.json
    fresh = _part(again.json["access_token"], 1)
    assert (fresh["sub"], fresh["aud"], fresh["scope"], fresh["act"]) == \
        ("alice", ["localhost", "127.0.0.1"], was["scope"], {"sub": "fts"})
    assert fresh["jti"] != got["jti"]
    assert "refresh_token" not in again.json  # the refresh token is kept until it expires


def test_a_refresh_may_narrow_the_scopes_never_widen_them(issuer: Any) -> None:
    refresh = _exchange(issuer, _alice_token(issuer)).json["refresh_token"]
    narrow = _refresh(issuer, refresh, scope="storage.read:/user/alice/data")
    assert narrow.status_code == 200, narrow.json
    assert _part(narrow.json["access_token"], 1)["scope"] == "storage.read:/user/alice/data"
    for wider in ("storage.modify:/raw", "storage.modify:/user/bob", "storage.stage:/", "compute.create"):
        reply = _refresh(issuer, refresh, scope=wider)
        assert reply.status_code == 400, (wider, reply.json)
        assert reply.json["error"] == "invalid_grant"
        assert wider in reply.json["error_description"]
    reply = _exchange(issuer, _alice_token(issuer), scope="storage.modify:/raw")
    assert (reply.status_code, reply.json["error"]) == (400, "invalid_grant")


def test_an_exchange_or_refresh_is_refused_with_the_reason(issuer: Any, tmp_path: Path) -> None:
    original = _alice_token(issuer)
    refresh = _exchange(issuer, original).json["refresh_token"]
    foreign = _alice_token(_issuer(tmp_path, "elsewhere"))  # same issuer URL, another key
    foreign_iss = _alice_token(_issuer(tmp_path, "other-url", issuer="https://other.test/"))
    cases: list[tuple[Any, int, str, str]] = [
        (_exchange(issuer, original, client=("plain", "p")), 400, "unauthorized_client", ""),
        (_exchange(issuer, original, client=("alice", "a")), 400, "unauthorized_client", ""),
        (_exchange(issuer, original, client=("fts", "wrong")), 401, "invalid_client", ""),
        (_exchange(issuer, foreign), 400, "invalid_grant", "not a token of this issuer"),
        (_exchange(issuer, foreign_iss), 400, "invalid_grant", "not a token of this issuer"),
        (_exchange(issuer, "not.a.token"), 400, "invalid_grant", "not a token of this issuer"),
        (_exchange(issuer, refresh), 400, "invalid_grant", "refresh token, not an access token"),
        (_exchange(issuer, original, subject_token_type="urn:ietf:params:oauth:token-type:id_token"), 400,
         "invalid_request", "subject_token_type"),
        (_exchange(issuer, original, requested_token_type=ACCESS_TOKEN_TYPE), 400, "invalid_request",
         "requested_token_type"),
        (issuer.post("/token", data={"grant_type": GRANT_TYPE, "subject_token_type": ACCESS_TOKEN_TYPE},
                     headers=_basic("fts", "f")), 400, "invalid_request", "subject_token"),
        (_refresh(issuer, refresh, client=("other", "o")), 400, "invalid_grant", ""),
        (_refresh(issuer, refresh, client=("plain", "p")), 400, "unauthorized_client", ""),
        (_refresh(issuer, original), 400, "invalid_grant", "not a refresh token"),
        (_refresh(issuer, "garbage"), 400, "invalid_grant", "not a token of this issuer"),
    ]
    for i, (reply, status, error, phrase) in enumerate(cases):
        assert reply.status_code == status, (i, reply.json)
        assert reply.json["error"] == error, (i, reply.json)
        assert phrase in reply.json.get("error_description", ""), (i, reply.json)
        assert "access_token" not in reply.json


def test_an_expired_token_cannot_be_exchanged(issuer: Any) -> None:
    short = _alice_token(issuer, lifetime="1")
    assert _part(short, 1)["exp"] - _part(short, 1)["iat"] == 1
    time.sleep(2.1)
    reply = _exchange(issuer, short)
    assert (reply.status_code, reply.json["error"]) == (400, "invalid_grant")
    assert "expired" in reply.json["error_description"]


@pytest.mark.parametrize(("asked", "status", "lifetime"), [("60", 200, 60), ("999999", 200, 3600),
                                                           ("0", 400, None), ("-5", 400, None), ("soon", 400, None)])
def test_a_client_may_ask_for_a_shorter_lifetime_only(issuer: Any, asked: str, status: int,
                                                      lifetime: int | None) -> None:
    reply = issuer.post("/token", data={"grant_type": "client_credentials", "audience": "localhost",
                                        "lifetime": asked}, headers=_basic("alice", "a"))
    assert reply.status_code == status, reply.json
    if lifetime is None:
        assert reply.json["error"] == "invalid_request"
        assert "lifetime" in reply.json["error_description"]
    else:
        body = _part(reply.json["access_token"], 1)
        assert body["exp"] - body["iat"] == lifetime
        assert reply.json["expires_in"] == lifetime
