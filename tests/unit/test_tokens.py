"""Tokens without a grid: scopes and their paths, the verifier against every kind of forged or unfit token, the
issuer (Authlib under Flask's test client) granting and refusing, sealed tokens, and the transfer service's
routes refusing callers without a fit token."""

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
from fastapi.testclient import TestClient

from juno_dcs.errors import ConfigError, PermissionDenied, Unauthenticated
from juno_dcs.issuer.app import create_app as issuer_app
from juno_dcs.issuer.registry import secret_digest
from juno_dcs.tokens.config import ClientAuth, IdentityCache
from juno_dcs.tokens.fetch import discover_token
from juno_dcs.tokens.scopes import Scope, ScopeError, parse_scope, parse_scopes, storage_permits
from juno_dcs.tokens.sealed import PREFIX, Sealer, ensure_key
from juno_dcs.tokens.verify import Verifier, bearer
from juno_dcs.transfer.routes import create_app as transfer_app
from tests.tokens import LocalIssuer, claims, hostile_tokens
from tests.unit.test_http_errors import _EmptyPool, transfer_config

# --- scopes


@pytest.mark.parametrize(("held", "action", "path", "allowed"), [
    ("storage.modify:/raw", "storage.modify", "/raw/2026/1125/x", True),
    ("storage.modify:/raw", "storage.modify", "/raw", True),
    ("storage.modify:/raw", "storage.modify", "/rawx/file", False),
    ("storage.modify:/raw", "storage.create", "/raw/x", False),
    ("storage.modify:/user/alice", "storage.modify", "/user/bob/x", False),
    ("storage.modify:/user/alice", "storage.modify", "/user/alice/../bob/x", False),
    ("storage.modify:/user/alice", "storage.modify", "/user/alice/./x", False),
    ("storage.read:/", "storage.read", "/anything/at/all", True),
    ("storage.read", "storage.read", "/x", True),  # no path: the whole storage
    ("storage.read:/mc/", "storage.read", "/mc/J25", True),
])
def test_storage_scopes_cover_their_path_and_below_only(held: str, action: str, path: str, allowed: bool) -> None:
    assert storage_permits(parse_scopes(held), action, path) is allowed


@pytest.mark.parametrize("bad", ["storage.read:relative", "storage.modify:/a/../b", "storage.read:/a//b",
                                 "fts:/x", "storage.read:/a\\b", "storage.read:/a\x00b", ""])
def test_malformed_scopes_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(ScopeError, match="scope"):
        parse_scope(bad)


def test_plain_scopes_cover_only_themselves() -> None:
    assert Scope("fts").covers(Scope("fts"))
    assert not Scope("fts").covers(Scope("compute.create"))
    assert not Scope("storage.read", "/raw").covers(Scope("storage.read"))  # /raw does not cover /


# --- the verifier


@pytest.fixture
def local() -> LocalIssuer:
    return LocalIssuer()


def verifier_for(local: LocalIssuer, audience: str = "svc") -> Verifier:
    return Verifier(local.issuer, (audience,), static_keys=local.keys)


def test_a_good_token_gives_its_subject_scopes_and_groups(local: LocalIssuer) -> None:
    who = verifier_for(local).verify(local.token("svc", "alice", "fts storage.read:/", ["/juno"]))
    assert (who.subject, who.groups) == ("alice", ("/juno",))
    assert who.has_scope("fts")
    assert who.may_storage("storage.read", "/raw/x")
    assert not who.may_storage("storage.modify", "/raw/x")
    with pytest.raises(PermissionDenied, match=r"compute\.create"):
        who.require_scope("compute.create", "submitting")


def test_a_token_for_several_audiences_is_good_for_each(local: LocalIssuer) -> None:
    token = local.token(["other", "svc"], "alice")
    assert verifier_for(local).verify(token).subject == "alice"


def test_every_hostile_token_is_refused_with_its_reason(local: LocalIssuer) -> None:
    cases = hostile_tokens(local, local.issuer, "svc", "alice", "fts", local.public_jwks())
    expected = {"no token": "no credential", "garbage": "not a signed JWT", "signed by another key": "signature",
                "alg none": "algorithm 'none'", "HS256 with the public key": "algorithm 'HS256'",
                "RS256 by a stranger": "signature", "expired": "expired", "not yet valid": "not valid yet",
                "wrong audience": "not for svc", "wrong issuer": "issued by", "no subject": "no 'sub'"}
    assert set(cases) == set(expected)
    verifier = verifier_for(local)
    for name, token in cases.items():
        header = None if token is None else f"Bearer {token}"
        with pytest.raises(Unauthenticated, match=expected[name]) as info:
            verifier.verify(bearer(header))
        if token is not None:
            assert token not in str(info.value), name  # the token never goes into the message


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer   ", "token abc"])
def test_other_authorization_headers_are_refused(header: str) -> None:
    with pytest.raises(Unauthenticated):
        bearer(header)


def test_the_identity_cache_checks_a_token_once_and_not_after_it_expires(local: LocalIssuer) -> None:
    calls = []

    class Counting(Verifier):
        def verify(self, token: str) -> Any:
            calls.append(token)
            return super().verify(token)

    cache = IdentityCache(Counting(local.issuer, ("svc",), static_keys=local.keys))
    token = local.token("svc", "alice")
    assert cache.identify(token).subject == cache.identify(token).subject == "alice"
    assert len(calls) == 1
    short = local.sign(claims(local.issuer, "svc", "bob", lifetime=-30))  # within the leeway: valid, not cached
    cache.identify(short)
    cache.identify(short)
    assert len(calls) == 3


# --- the issuer


@pytest.fixture
def issuer(tmp_path: Path) -> Any:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    clients = [{"client_id": "alice", "secret_sha256": secret_digest("s3cret"), "subject": "alice",
                "groups": ["/juno"], "scopes": ["storage.read:/", "storage.modify:/user/alice", "compute.create"],
                "audiences": ["localhost", "juno-wms"]}]
    (tmp_path / "clients.yaml").write_text(yaml.safe_dump({"clients": clients}))
    (tmp_path / "issuer.yaml").write_text(yaml.safe_dump({"issuer": "https://issuer.test/",
                                                          "key_file": str(tmp_path / "key.pem"),
                                                          "clients_file": str(tmp_path / "clients.yaml")}))
    return issuer_app(str(tmp_path / "issuer.yaml")).test_client()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _payload(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))  # type: ignore[no-any-return]


def test_the_issuer_publishes_discovery_and_its_public_key_only(issuer: Any) -> None:
    meta = issuer.get("/.well-known/openid-configuration").json
    assert meta["issuer"] == "https://issuer.test/"
    assert meta["token_endpoint"] == "https://issuer.test/token"
    assert "client_credentials" in meta["grant_types_supported"]
    [key] = issuer.get("/jwks").json["keys"]
    assert key["kty"] == "EC"
    assert key["kid"]
    assert "d" not in key


def test_the_issuer_grants_wlcg_profile_tokens(issuer: Any) -> None:
    reply = issuer.post("/token", data={"grant_type": "client_credentials", "audience": "localhost",
                                        "scope": "storage.modify:/user/alice/data"}, headers=_basic("alice", "s3cret"))
    assert reply.status_code == 200, reply.json
    body = _payload(reply.json["access_token"])
    assert {"iss", "sub", "aud", "scope", "exp", "iat", "nbf", "jti", "wlcg.ver", "wlcg.groups"} <= set(body)
    assert (body["sub"], body["aud"], body["scope"], body["wlcg.ver"]) == \
        ("alice", "localhost", "storage.modify:/user/alice/data", "1.0")
    assert body["exp"] - body["iat"] == 3600
    assert abs(body["iat"] - time.time()) < 60
    header = json.loads(base64.urlsafe_b64decode(reply.json["access_token"].split(".")[0] + "=="))
    assert (header["alg"], header["typ"]) == ("ES256", "at+jwt")
    assert header["kid"]


@pytest.mark.parametrize(("form", "auth", "status", "error", "phrase"), [
    ({"scope": "storage.modify:/raw"}, ("alice", "s3cret"), 400, "invalid_scope", "storage.modify:/raw"),
    ({"scope": "storage.modify:/user/bob"}, ("alice", "s3cret"), 400, "invalid_scope", "/user/bob"),
    ({"scope": "storage.modify:/user/alice/../bob"}, ("alice", "s3cret"), 400, "invalid_scope", "'..'"),
    ({"scope": "fts"}, ("alice", "s3cret"), 400, "invalid_scope", "fts"),
    ({"audience": "127.0.0.1"}, ("alice", "s3cret"), 400, "invalid_target", "127.0.0.1"),
    ({}, ("alice", "wrong"), 401, "invalid_client", ""),
    ({}, ("mallory", "s3cret"), 401, "invalid_client", ""),
    ({"grant_type": "password", "username": "alice", "password": "s3cret"}, ("alice", "s3cret"), 400,
     "unsupported_grant_type", ""),
])
def test_the_issuer_refuses_what_a_client_may_not_have(issuer: Any, form: dict[str, str], auth: tuple[str, str],
                                                       status: int, error: str, phrase: str) -> None:
    reply = issuer.post("/token", data={"grant_type": "client_credentials", **form}, headers=_basic(*auth))
    assert reply.status_code == status, reply.json
    assert reply.json["error"] == error
    assert phrase in reply.json.get("error_description", "")
    assert "access_token" not in reply.json


# --- client side


def test_a_client_secret_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x\n")
    secret.chmod(0o644)
    auth = ClientAuth(issuer="https://issuer.test/", client_id="probes", secret_file=secret)
    with pytest.raises(ConfigError, match="chmod 600"):
        auth.credentials()
    secret.chmod(0o600)
    assert auth.credentials().client_secret == "x"
    assert "x" not in repr(auth.credentials())


def test_bearer_token_discovery_order(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("from-file\n")
    assert discover_token({"BEARER_TOKEN": "direct", "BEARER_TOKEN_FILE": str(tmp_path / "file")}) == "direct"
    assert discover_token({"BEARER_TOKEN_FILE": str(tmp_path / "file")}) == "from-file"
    assert discover_token({"BEARER_TOKEN_FILE": str(tmp_path / "missing")}) is None


def test_sealed_tokens_open_only_with_their_key(tmp_path: Path) -> None:
    assert ensure_key(tmp_path / "k1")
    assert not ensure_key(tmp_path / "k1")
    assert (tmp_path / "k1").stat().st_mode & 0o777 == 0o600
    ensure_key(tmp_path / "k2")
    one, two = Sealer(tmp_path / "k1"), Sealer(tmp_path / "k2")
    sealed = one.seal("eyJ.secret.token")
    assert sealed is not None
    assert sealed.startswith(PREFIX)
    assert "secret" not in sealed
    assert one.open(sealed) == "eyJ.secret.token"
    assert two.open(sealed) is None  # a replaced key: the token is gone, not garbage
    assert one.open("eyJ.clear.token") is None  # a token stored in clear by an older release is never used
    (tmp_path / "k1").chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        Sealer(tmp_path / "k1")


# --- the transfer service's routes


@pytest.fixture
def transfer_service(tmp_path: Path, local: LocalIssuer) -> TestClient:
    config = transfer_config(tmp_path, local)
    app = transfer_app(config, _EmptyPool(), Verifier(local.issuer, ("127.0.0.1",), static_keys=local.keys))  # type: ignore[arg-type]
    return TestClient(app)


@pytest.mark.parametrize(("method", "path"), [("GET", "/whoami"), ("GET", "/jobs"), ("POST", "/jobs"),
                                              ("GET", "/jobs/x"), ("GET", "/jobs/x/files"), ("DELETE", "/jobs/x"),
                                              ("POST", "/jobs/x"), ("GET", "/snapshot"),
                                              ("GET", "/optimizer/decisions")])
def test_every_route_but_the_root_needs_a_token(transfer_service: TestClient, local: LocalIssuer, method: str,
                                                path: str) -> None:
    assert transfer_service.get("/").status_code == 200
    for name, token in hostile_tokens(local, local.issuer, "127.0.0.1", "rucio", "fts",
                                      local.public_jwks()).items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        reply = transfer_service.request(method, path, headers=headers, content=b"{}")
        assert reply.status_code == 401, (name, reply.text)
        assert reply.json()["status"] == "401"


def test_submitting_needs_the_fts_scope(transfer_service: TestClient, local: LocalIssuer) -> None:
    token = local.token("127.0.0.1", "alice", "storage.read:/ compute.create", ["/juno"])
    reply = transfer_service.post("/jobs", headers={"Authorization": f"Bearer {token}"}, content=b"{}")
    assert reply.status_code == 403
    assert "scope 'fts'" in reply.json()["message"]


def test_whoami_names_the_tokens_subject(transfer_service: TestClient, local: LocalIssuer) -> None:
    token = local.token("127.0.0.1", "alice", "fts", ["/juno"])
    me = transfer_service.get("/whoami", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["dn"] == ["alice"]
    assert me["method"] == "oauth2"
    assert me["level"]["transfer"] == "own"
    admin = local.token("127.0.0.1", "root", "fts", ["/juno", "/juno/admin"])
    assert transfer_service.get("/whoami", headers={"Authorization": f"Bearer {admin}"}).json()["is_root"]
