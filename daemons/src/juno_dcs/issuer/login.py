"""Logins at the issuer: OpenID Connect's authorization-code flow, with Authlib's grant and its OpenID extension.

A client that registered redirect URIs (Rucio, `rucio`) sends a browser to `/authorize`; the person types a Rucio
account and its password into the issuer's form; the issuer sends the browser back to the redirect URI with a code
(codes.py), and the client redeems the code at `/token` with its own secret for an access token (RFC 9068, `sub` =
the account, `aud` = the client) and an ID token (`sub`, `iss`, `aud`, `nonce`, `auth_time`, `at_hash`), both
signed with the issuer's ES256 key. An unknown client or a redirect URI the client did not register is refused on
the issuer's own page, never redirected to.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import ECKey

from juno_dcs.issuer.codes import CODE_LIFETIME, AuthorizationCode, CodeStore
from juno_dcs.issuer.registry import Client, User

ALG = "ES256"
LOGIN_SCOPES = frozenset({"openid", "profile", "offline_access"})  # what a login's tokens may carry
ID_TOKEN_LIFETIME = 3600


def login_scope_problem(scope: str | None) -> str | None:
    """Why a login may not ask for `scope`, or None: it must ask for `openid` and nothing but OIDC's scopes (the
    access token of a login is for the client, Rucio, not for the storage)."""
    wanted = set((scope or "").split())
    if "openid" not in wanted:
        return "a login must ask for the scope 'openid'"
    extra = sorted(wanted - LOGIN_SCOPES)
    if extra:
        return "a login may ask only for " + " ".join(sorted(LOGIN_SCOPES)) + "; not for: " + " ".join(extra)
    return None


def user_info(user: User, scope: str) -> UserInfo:
    """The claims about a person: `sub` always; with `profile` the account's name."""
    info = UserInfo(sub=user.subject)
    if "profile" in scope.split():
        info["preferred_username"] = user.name
        info["name"] = user.name
    return info


class LoginCodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """The authorization-code grant, for clients with registered redirect URIs; codes in a CodeStore, people from
    the clients file. The server carries both (`server.codes`, `server.users`)."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def validate_requested_scope(self) -> None:
        problem = login_scope_problem(self.request.payload.scope)
        if problem:
            raise InvalidScopeError(description=problem)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        now = int(time.time())
        client: Any = request.client
        entry = AuthorizationCode(client_id=client.get_client_id(),
                                  redirect_uri=request.payload.redirect_uri or client.get_default_redirect_uri(),
                                  scope=request.scope or "", user_name=request.user.name,
                                  nonce=request.payload.data.get("nonce"), auth_time=now,
                                  expires_at=now + CODE_LIFETIME)
        self.server.codes.save(code, entry)

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        codes: CodeStore = self.server.codes
        return codes.take(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing left to do: `query_authorization_code` took the code out already (single use)."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        users: dict[str, User] = self.server.users
        return users.get(authorization_code.user_name)


class IssuerOpenIDCode(OpenIDCode):  # type: ignore[misc]
    """OpenID Connect on the code grant: ID tokens signed with the issuer's key, nonces used once."""

    def __init__(self, issuer: str, key: ECKey, codes: CodeStore) -> None:
        super().__init__(require_nonce=True)
        self.issuer = issuer
        self.key = key
        self.codes = codes

    def resolve_client_private_key(self, client: Any) -> ECKey:
        return self.key

    def get_client_algorithm(self, client: Any) -> str:
        return ALG

    def get_encode_header(self, client: Any) -> dict[str, str]:
        return {"alg": ALG, "typ": "JWT", "kid": str(self.key.kid)}

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.issuer, "aud": [client.get_client_id()], "iat": now, "exp": now + ID_TOKEN_LIFETIME}

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.codes.nonce_used(request.payload.client_id, nonce)

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        return user_info(user, scope)


def redirect_uri_allowed(client: Client, redirect_uri: str | None) -> bool:
    """Exactly one of the client's registered URIs (no prefix, no pattern)."""
    return redirect_uri is not None and redirect_uri in client.redirect_uris
