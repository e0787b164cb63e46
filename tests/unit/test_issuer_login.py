"""Logins at the grid's token issuer (the authorization-code grant with OpenID Connect), in-process: the form, the
codes (single use, bound to client and redirect URI), the ID token Rucio's pyoidc client checks (signature, `iss`,
`aud`, `nonce`, `at_hash`), the refusals, and the grid's wiring (who may log in, with which `sub`)."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import KeySet

from juno_dcs.grid import issuer as grid_issuer
from juno_dcs.grid.apply import oidc_identity
from juno_dcs.grid.home import GridHome
from juno_dcs.issuer.app import CSRF_COOKIE, create_app, discovery
from juno_dcs.issuer.codes import FAILURE_WINDOW, MAX_ADDRESS_FAILURES, MAX_FAILURES, AuthorizationCode, CodeStore
from juno_dcs.issuer.login import login_scope_problem
from juno_dcs.issuer.registry import password_digest, secret_digest
from juno_dcs.settings import GridSettings
from juno_dcs.topology import load_topology

ISSUER = "https://issuer.test/"
BACK = "https://localhost:25061/auth/oidc_code"


@pytest.fixture
def issuer(tmp_path: Path) -> Any:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    clients = [
        {"client_id": "rucio", "secret_sha256": secret_digest("rucio-secret"), "subject": "rucio",
         "scopes": ["openid", "profile"], "audiences": ["*"], "redirect_uris": [BACK]},
        {"client_id": "alice", "secret_sha256": secret_digest("alice-secret"), "subject": "alice",
         "scopes": ["openid", "profile"], "audiences": ["rucio"]},
    ]
    users = [{"name": "alice", "subject": "alice", "groups": ["/juno"],
              "password_pbkdf2": password_digest("alice", "alice-pw")}]
    (tmp_path / "clients.yaml").write_text(yaml.safe_dump({"clients": clients, "users": users}))
    (tmp_path / "issuer.yaml").write_text(yaml.safe_dump({
        "issuer": ISSUER, "key_file": str(tmp_path / "key.pem"), "clients_file": str(tmp_path / "clients.yaml"),
        "codes_file": str(tmp_path / "codes.sqlite")}))
    return create_app(str(tmp_path / "issuer.yaml")).test_client()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _authorize_url(**overrides: str) -> str:
    # what rucio.core.oidc.get_auth_oidc sends (its `audience` and `grant_types` too)
    query = {"response_type": "code", "client_id": "rucio", "redirect_uri": BACK, "scope": "openid profile",
             "state": "st4te", "nonce": "n0nce", "audience": "rucio", "grant_types": "authorization_code"}
    query.update(overrides)
    return "/authorize?" + urlencode(query)


def _form_value(issuer: Any, url: str) -> str:
    """The login form's check value (its hidden field; the test client keeps the cookie that goes with it), or ""
    when the request is refused before any form is shown."""
    found = re.search(r'name="csrf" value="([^"]+)"', issuer.get(url).text)
    return found.group(1) if found else ""


def _login(issuer: Any, account: str = "alice", password: str = "alice-pw",  # noqa: S107
           **overrides: str) -> Any:
    url = _authorize_url(**overrides)
    return issuer.post(url, data={"account": account, "password": password, "csrf": _form_value(issuer, url)})


def _code(reply: Any) -> str:
    assert reply.status_code == 302, reply.text
    location = urlsplit(reply.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == BACK
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    return str(query["code"][0])


def _redeem(issuer: Any, code: str, redirect_uri: str = BACK, secret: str = "rucio-secret") -> Any:  # noqa: S107
    return issuer.post("/token", data={"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": redirect_uri}, headers=_basic("rucio", secret))


def test_discovery_names_what_rucios_oidc_client_needs() -> None:
    meta = discovery(ISSUER)
    assert meta["authorization_endpoint"] == "https://issuer.test/authorize"
    assert meta["userinfo_endpoint"] == "https://issuer.test/userinfo"
    assert meta["response_types_supported"] == ["code"]
    assert "authorization_code" in meta["grant_types_supported"]
    assert meta["id_token_signing_alg_values_supported"] == ["ES256"]
    assert {"jwks_uri", "subject_types_supported", "token_endpoint"} <= set(meta)


def test_the_login_form_is_shown_for_rucio(issuer: Any) -> None:
    page = issuer.get(_authorize_url())
    assert page.status_code == 200
    assert 'name="password"' in page.text
    assert "rucio" in page.text


def test_a_login_gives_rucio_an_id_token_for_the_account(issuer: Any) -> None:
    reply = _redeem(issuer, _code(_login(issuer)))
    assert reply.status_code == 200, reply.json
    body = reply.json
    keys = KeySet.import_key_set(issuer.get("/jwks").json)
    id_token = jwt.decode(body["id_token"], keys, algorithms=["ES256"])
    claims = id_token.claims
    assert (claims["iss"], claims["sub"], claims["aud"], claims["nonce"]) == (ISSUER, "alice", ["rucio"], "n0nce")
    assert claims["preferred_username"] == "alice"
    assert claims["exp"] > time.time() + 600
    assert claims["at_hash"]
    access = jwt.decode(body["access_token"], keys, algorithms=["ES256"]).claims
    assert (access["sub"], access["aud"], access["client_id"], access["scope"]) == \
        ("alice", "rucio", "rucio", "openid profile")
    assert access["wlcg.groups"] == ["/juno"]
    assert "refresh_token" not in body
    info = issuer.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200, info.text
    assert info.json["sub"] == "alice"


def test_a_code_is_redeemed_once_by_its_client_with_its_redirect_uri(issuer: Any) -> None:
    code = _code(_login(issuer))
    assert _redeem(issuer, code).status_code == 200
    again = _redeem(issuer, code)
    assert (again.status_code, again.json["error"]) == (400, "invalid_grant")
    other = _redeem(issuer, _code(_login(issuer, nonce="n2")), redirect_uri="https://localhost:25061/elsewhere")
    assert (other.status_code, other.json["error"]) == (400, "invalid_grant")
    wrong_secret = _redeem(issuer, _code(_login(issuer, nonce="n3")), secret="wrong")
    assert (wrong_secret.status_code, wrong_secret.json["error"]) == (401, "invalid_client")


def test_a_wrong_password_is_refused_with_a_clear_message(issuer: Any) -> None:
    for account, password in [("alice", "wrong"), ("mallory", "alice-pw"), ("", "")]:
        reply = _login(issuer, account, password)
        assert reply.status_code == 401
        assert "Wrong account name or password." in reply.text
        assert "Location" not in reply.headers


@pytest.mark.parametrize(("overrides", "phrase"), [
    ({"redirect_uri": "https://evil.example/auth/oidc_code"}, "Redirect URI"),
    ({"redirect_uri": BACK + "x"}, "Redirect URI"),
    ({"client_id": "mallory"}, "does not exist"),
    ({"client_id": "alice"}, "Redirect URI"),  # a client without redirect URIs may not log anyone in
])
def test_unknown_clients_and_redirect_uris_are_refused_on_the_issuers_page(issuer: Any, overrides: dict[str, str],
                                                                          phrase: str) -> None:
    for reply in (issuer.get(_authorize_url(**overrides)), _login(issuer, **overrides)):
        assert reply.status_code == 400
        assert "Location" not in reply.headers  # never sent anywhere
        assert phrase in reply.text
        assert 'name="password"' not in reply.text


def test_a_login_asking_for_storage_scopes_or_reusing_a_nonce_goes_back_with_an_error(issuer: Any) -> None:
    scoped = issuer.get(_authorize_url(scope="openid storage.read:/"))
    assert scoped.status_code == 302
    assert parse_qs(urlsplit(scoped.headers["Location"]).query)["error"] == ["invalid_scope"]
    _code(_login(issuer, nonce="once"))
    reused = _login(issuer, nonce="once")
    assert reused.status_code == 302
    assert "error=" in reused.headers["Location"]


def test_the_client_credentials_grant_is_unchanged(issuer: Any) -> None:
    reply = issuer.post("/token", data={"grant_type": "client_credentials", "audience": "rucio",
                                        "scope": "openid"}, headers=_basic("alice", "alice-secret"))
    assert reply.status_code == 200, reply.json
    assert "id_token" not in reply.json


@pytest.mark.parametrize(("scope", "ok"), [("openid profile", True), ("openid", True), ("profile", False),
                                           ("openid fts", False), (None, False)])
def test_login_scopes(scope: str | None, ok: bool) -> None:
    assert (login_scope_problem(scope) is None) == ok


def test_codes_are_single_use_bound_to_their_client_and_short_lived(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "codes.sqlite")
    assert (tmp_path / "codes.sqlite").stat().st_mode & 0o777 == 0o600
    now = int(time.time())
    entry = AuthorizationCode("rucio", BACK, "openid", "alice", "n", now, now + 60)
    store.save("c1", entry)
    assert store.nonce_used("rucio", "n")
    assert not store.nonce_used("other", "n")
    assert store.take("c1", "rucio") == entry
    assert store.take("c1", "rucio") is None
    store.save("c2", entry)
    assert store.take("c2", "other") is None  # another client's: refused, and gone
    assert store.take("c2", "rucio") is None
    store.save("c3", AuthorizationCode("rucio", BACK, "openid", "alice", None, now - 300, now - 1))
    assert store.take("c3", "rucio") is None
    assert "c1" not in (tmp_path / "codes.sqlite").read_bytes().decode(errors="replace")


def test_the_grid_lets_every_account_log_in_as_its_rucio_identity(tmp_path: Path) -> None:
    home = GridHome(tmp_path / "grid")
    settings = GridSettings(home=home.root, storage="posix")
    topo = load_topology(settings.topology_file)
    state = home.new_state(26000, settings.pg_admin_url).with_accounts(list(topo.accounts))
    where = grid_issuer.layout(home, state)
    people = {u.name: u for u in grid_issuer.users(state, topo)}
    assert set(people) == set(topo.accounts)
    alice = people["alice"]
    assert alice.check_password(state.password("alice"))
    assert not alice.check_password(state.password("root"))
    # the ID token's sub and iss name the identity `up` gives the account in Rucio
    assert oidc_identity(alice.subject, where.url) == f"SUB=alice, ISS=https://127.0.0.1:{26033}/"
    logins = [c for c in grid_issuer.clients(state, topo, [where.login_redirect_uri]) if c.logs_in]
    assert [(c.client_id, c.redirect_uris) for c in logins] == [("rucio", ["https://localhost:26061/auth/oidc_code"])]
    secret = grid_issuer.idpsecret(where, state)
    assert secret["redirect_uris"] == [where.login_redirect_uri]
    assert secret["id_token_signed_response_alg"] == "ES256"
    files = grid_issuer.render_configs(where, home, state, settings, topo)
    text = files[where.clients]
    assert state.password("alice") not in text
    assert state.password("root") not in text
    assert json.loads(files[where.idpsecrets])["juno"]["client_id"] == "rucio"


def test_a_login_posted_without_the_forms_check_value_is_refused(issuer: Any) -> None:
    """Login CSRF: a form posted from another site has no cookie of the issuer's, or not the one of its field."""
    url = _authorize_url()
    good = _form_value(issuer, url)
    for data in ({"account": "alice", "password": "alice-pw"},
                 {"account": "alice", "password": "alice-pw", "csrf": "forged"},
                 {"account": "alice", "password": "alice-pw", "csrf": ""}):
        reply = issuer.post(url, data=data)
        assert reply.status_code == 400, reply.text
        assert "This form has expired or was not sent from this page" in reply.text
        assert "Location" not in reply.headers
    issuer.delete_cookie(CSRF_COOKIE, path="/authorize")
    reply = issuer.post(url, data={"account": "alice", "password": "alice-pw", "csrf": good})
    assert reply.status_code == 400


def test_the_forms_cookie_is_the_issuers_own(issuer: Any) -> None:
    cookie = issuer.get(_authorize_url()).headers["Set-Cookie"]
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/authorize"):
        assert attribute in cookie


def test_failed_logins_lock_the_account_before_its_password_is_checked(issuer: Any) -> None:
    for _ in range(MAX_FAILURES):
        assert _login(issuer, "alice", "guess").status_code == 401
    locked = _login(issuer, "alice", "alice-pw")  # the right password, too late
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text
    assert 0 < int(locked.headers["Retry-After"]) <= FAILURE_WINDOW


def test_failures_are_counted_per_account_and_per_address(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "codes.sqlite")
    for _ in range(MAX_FAILURES - 1):
        store.failed_login("alice", "10.0.0.1")
    assert store.locked_for("alice", "10.0.0.2") == 0  # four failures, not five
    store.failed_login("alice", "10.0.0.3")
    assert store.locked_for("alice", "10.0.0.2") > 0  # the account, from anywhere
    assert store.locked_for("bob", "10.0.0.1") == 0  # one address's failures lock it only at a higher count
    for i in range(MAX_ADDRESS_FAILURES - MAX_FAILURES + 1):
        store.failed_login(f"user{i}", "10.0.0.1")
    assert store.locked_for("bob", "10.0.0.1") > 0
    assert store.locked_for("bob", "10.0.0.2") == 0
