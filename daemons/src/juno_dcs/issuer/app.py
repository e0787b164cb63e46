"""The issuer's Flask application: discovery, JWKS, the token endpoint, the login (`/authorize`, `/userinfo`;
login.py) and a health check.

Run under gunicorn with the grid's TLS certificate: `gunicorn 'juno_dcs.issuer.app:create_app()'` with
JUNO_ISSUER_CONFIG naming etc/issuer.yaml. A token request names what it wants with `scope` (space separated) and
`audience` (WLCG's parameter; `resource` is read too); each scope must be covered by what the client is
registered for and the audience must be one of its audiences, or the request is refused with `invalid_scope`
or `invalid_target` naming what was refused. No token is logged: a grant is logged by its client, subject,
audience and scopes; a login by its account and outcome, never a password.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator, JWTBearerTokenValidator
from flask import Flask, Response, jsonify, make_response, request
from joserfc.jwk import ECKey, KeySet

from juno_dcs.issuer import pages
from juno_dcs.issuer.codes import CodeStore
from juno_dcs.issuer.exchange import GRANT_TYPE as EXCHANGE_GRANT
from juno_dcs.issuer.exchange import Signer, Subject, bound_grants
from juno_dcs.issuer.login import IssuerOpenIDCode, LoginCodeGrant, redirect_uri_allowed, user_info
from juno_dcs.issuer.registry import Client, IssuerConfig, User, load_config, load_registry
from juno_dcs.tokens.scopes import ANY_AUDIENCE, WLCG_VERSION, ScopeError, parse_scopes, permitted

logger = logging.getLogger("juno_dcs.issuer")
ALG = "ES256"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
CSRF_COOKIE = "juno_issuer_form"
CSRF_LIFETIME = 900  # seconds a login form may stay open


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707: the requested audience (resource) is not one this client may ask for."""

    error = "invalid_target"


class RegisteredClient(ClientMixin):  # type: ignore[misc]
    def __init__(self, entry: Client) -> None:
        self.entry = entry

    def get_client_id(self) -> str:
        return self.entry.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.entry.redirect_uris[0] if self.entry.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        # the grant has checked every requested scope; none requested means all the client is registered for
        return scope if scope else " ".join(self.entry.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri_allowed(self.entry, redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.entry.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.entry.logs_in

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type in (EXCHANGE_GRANT, "refresh_token"):
            return self.entry.exchange
        return grant_type == "client_credentials" or (grant_type == "authorization_code" and self.entry.logs_in)


def requested_audiences() -> list[str]:
    raw = request.form.get("audience") or request.form.get("resource") or ""
    return raw.split() or [ANY_AUDIENCE]


def requested_lifetime() -> int | None:
    """`lifetime` (seconds): a client may ask for a token that expires sooner than its registration says."""
    raw = request.form.get("lifetime")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) <= 0:
        raise InvalidRequestError(description=f"lifetime must be a positive number of seconds, not {raw!r}")
    return int(raw)


class ScopedClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    """The client-credentials grant, with every requested scope and audience checked against the client's
    registration."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

    def validate_requested_scope(self) -> None:
        client: RegisteredClient = self.request.client
        try:
            wanted = parse_scopes(self.request.payload.scope)
        except ScopeError as exc:
            raise InvalidScopeError(description=str(exc)) from None
        held = client.entry.allowed_scopes()
        refused = [str(s) for s in wanted if not permitted(s, held)]
        if refused:
            raise InvalidScopeError(description=f"client {client.entry.client_id!r} may not ask for: "
                                                + " ".join(refused))
        bad = [a for a in requested_audiences() if not client.entry.audience_allowed(a)]
        if bad:
            raise InvalidTargetError(description=f"client {client.entry.client_id!r} may not ask for audience: "
                                                 + " ".join(bad))


class WlcgTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """RFC 9068 access tokens with the WLCG profile's claims (`wlcg.ver`, `wlcg.groups`, `nbf`) and the
    requested audience."""

    def __init__(self, issuer: str, key: ECKey, refresh_token: Any = None) -> None:
        super().__init__(issuer=issuer, alg=ALG, expires_generator=self._lifetime,
                         refresh_token_generator=refresh_token)
        self.key = key

    @staticmethod
    def _lifetime(client: RegisteredClient, grant_type: str) -> int:
        return min(client.entry.lifetime, requested_lifetime() or client.entry.lifetime)

    def get_jwks(self) -> KeySet:
        return KeySet([self.key])  # from a key set, joserfc names the key in the header (`kid`)

    def get_audiences(self, client: RegisteredClient, user: User | Subject | None, scope: str) -> str | list[str]:
        if isinstance(user, Subject):  # exchanged or refreshed: the audiences of the token handed over
            audiences = list(user.audiences)
        elif user is not None:  # a login: the token is for the client that logged the person in (Rucio)
            return client.entry.client_id
        else:
            audiences = requested_audiences()
        return audiences[0] if len(audiences) == 1 else audiences

    def get_extra_claims(self, client: RegisteredClient, grant_type: str, user: User | Subject | None,
                         scope: str) -> dict[str, Any]:
        claims: dict[str, Any] = {"wlcg.ver": WLCG_VERSION, "nbf": _now()}
        if isinstance(user, Subject):  # exchanged or refreshed: the subject's token, acted on by the client
            claims |= {"sub": user.sub, "act": {"sub": client.entry.subject}}
            groups = list(user.groups)
        elif user is not None:  # a login
            claims["sub"], groups = user.subject, list(user.groups)
        else:
            claims["sub"], groups = client.entry.subject, list(client.entry.groups)
        if groups:
            claims["wlcg.groups"] = groups
        return claims


def _now() -> int:
    return int(time.time())


def load_key(path: Path) -> ECKey:
    key = ECKey.import_key(path.read_bytes())
    return ECKey.import_key(key.as_dict(private=True, kid=key.thumbprint()))


def discovery(issuer: str) -> dict[str, Any]:
    base = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "jwks_uri": f"{base}/jwks",
        "token_endpoint": f"{base}/token",
        "authorization_endpoint": f"{base}/authorize",
        "userinfo_endpoint": f"{base}/userinfo",
        "grant_types_supported": ["client_credentials", "authorization_code", EXCHANGE_GRANT, "refresh_token"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALG],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "scopes_supported": ["openid", "profile", "offline_access", "storage.read", "storage.create",
                             "storage.modify", "storage.stage", "compute.create", "compute.read", "compute.modify",
                             "compute.cancel", "fts"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id", "wlcg.ver",
                             "wlcg.groups", "nonce", "auth_time", "at_hash", "name", "preferred_username"],
    }


class IssuerServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's server, carrying what the login grant reads: the pending codes and the people."""

    def __init__(self, app: Flask, codes: CodeStore | None, users: dict[str, User], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.codes = codes
        self.users = users


def login_validator(issuer: str, key: ECKey, audience: str) -> JWTBearerTokenValidator:
    """Authlib's RFC 9068 validator for the access tokens of logins (`aud` = the client that logged in)."""

    class LoginTokenValidator(JWTBearerTokenValidator):  # type: ignore[misc]
        def get_jwks(self) -> KeySet:
            return KeySet([key])

    return LoginTokenValidator(issuer, audience)


def _form(client_id: str, error: str, account: str, status: int) -> Response:
    """The login form with a fresh check value, in the form and in a cookie that only this page's own posts carry
    (SameSite=Strict, HTTPS only, not readable by scripts)."""
    value = secrets.token_urlsafe(32)
    reply = make_response(pages.login_form(client_id, error, value, account), status)
    reply.set_cookie(CSRF_COOKIE, value, max_age=CSRF_LIFETIME, path="/authorize", secure=True, httponly=True,
                     samesite="Strict")
    return reply


def create_app(config_path: str | None = None) -> Flask:
    if config_path is None:  # under gunicorn: the grants go to the program's log, one line each
        from juno_dcs.logsetup import configure

        configure(os.environ.get("JUNO_DCS_LOG_JSON") == "1")
    config: IssuerConfig = load_config(Path(config_path or os.environ["JUNO_ISSUER_CONFIG"]))
    clients, users = load_registry(config.clients_file)
    key = load_key(config.key_file)
    public = KeySet([key]).as_dict(private=False)
    codes = CodeStore(config.codes_file) if config.codes_file else None
    app = Flask("juno_dcs.issuer")

    def query_client(client_id: str) -> RegisteredClient | None:
        entry = clients.get(client_id)
        return RegisteredClient(entry) if entry else None

    def save_token(token: dict[str, Any], oauth_request: Any) -> None:
        client: RegisteredClient = oauth_request.client
        user = getattr(oauth_request, "user", None)
        if isinstance(user, Subject):
            subject, audience = user.sub, " ".join(user.audiences)
        elif user is not None:
            subject, audience = user.subject, client.entry.client_id
        else:
            subject, audience = client.entry.subject, " ".join(requested_audiences())
        logger.info("granted %s client=%s sub=%s aud=%s scope=%s expires_in=%s%s", oauth_request.payload.grant_type,
                    client.entry.client_id, subject, audience, token.get("scope", ""), token.get("expires_in"),
                    " with a refresh token" if "refresh_token" in token else "")

    signer = Signer(config.issuer, key, config.refresh_lifetime)
    server = IssuerServer(app, codes, users, query_client=query_client, save_token=save_token)
    server.register_grant(ScopedClientCredentials)
    for grant in bound_grants(signer):
        server.register_grant(grant)
    logins = [c for c in clients.values() if c.logs_in]
    if codes is not None and logins:
        server.register_grant(LoginCodeGrant, [IssuerOpenIDCode(config.issuer, key, codes)])
    server.register_token_generator("default", WlcgTokenGenerator(config.issuer, key,
                                                                  refresh_token=signer.refresh_token))
    protect = ResourceProtector()
    if logins:  # one bearer validator per server: the userinfo endpoint reads the logins of the first (Rucio)
        protect.register_token_validator(login_validator(config.issuer, key, logins[0].client_id))
    document = discovery(config.issuer)

    @app.get("/.well-known/openid-configuration")
    def openid_configuration() -> Any:
        return jsonify(document)

    @app.get("/jwks")
    def jwks() -> Any:
        return jsonify(public)

    @app.post("/token")
    def token() -> Any:
        return server.create_token_response()

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        try:
            grant = server.get_consent_grant(end_user=None)
        except OAuth2Error as error:
            if error.redirect_uri:  # a known client and one of its redirect URIs: the client hears of it
                return server.handle_error_response(request, error)
            logger.warning("login refused: client=%s redirect_uri=%s: %s", request.values.get("client_id"),
                           request.values.get("redirect_uri"), error.description or error.error)
            return pages.refused(error.error, error.description or ""), 400
        client_id = grant.client.get_client_id()
        if request.method == "GET":
            return _form(client_id, "", "", 200)
        name = request.form.get("account", "").strip()
        sent, kept = request.form.get("csrf", ""), request.cookies.get(CSRF_COOKIE, "")
        if not sent or not hmac.compare_digest(sent, kept):
            logger.warning("login refused: client=%s account=%s: the form's check value does not match its cookie",
                           client_id, name)
            return _form(client_id, pages.STALE_FORM, name, 400)
        address = str(request.remote_addr)
        wait = codes.locked_for(name, address) if codes is not None else 0
        if wait:
            logger.warning("login refused: client=%s account=%s: too many failed logins (%d s left)", client_id,
                           name, wait)
            reply = _form(client_id, pages.too_many(wait), name, 429)
            reply.headers["Retry-After"] = str(wait)
            return reply
        user = users.get(name)
        if user is None or not user.check_password(request.form.get("password", "")):
            logger.warning("login refused: client=%s account=%s: wrong account or password", client_id, name)
            if codes is not None:
                codes.failed_login(name, address)
            return _form(client_id, pages.WRONG_PASSWORD, name, 401)
        logger.info("login: client=%s account=%s sub=%s", client_id, user.name, user.subject)
        return server.create_authorization_response(grant=grant, grant_user=user)

    @app.route("/userinfo", methods=["GET", "POST"])
    def userinfo() -> Any:
        try:
            claims = protect.acquire_token(["openid"])
        except OAuth2Error as error:
            return server.handle_error_response(request, error)
        user = next((u for u in users.values() if u.subject == claims["sub"]), None)
        if user is None:
            return jsonify({"error": "invalid_token", "error_description": "no such person"}), 401
        return jsonify(dict(user_info(user, str(claims.get("scope", "")))))

    @app.get("/health")
    def health() -> Any:
        return jsonify({"status": "ok", "clients": len(clients)})

    return app
