"""Acting for a token's subject later: token exchange (RFC 8693) and refresh tokens, for the clients registered
with `exchange: true` (the transfer service).

A job reaches the transfer service with the tokens Rucio (or a user) gave it; they may run out while the job
waits in its queue or while a long copy runs. As FTS does with IAM, the service exchanges each token, while it is
still valid, for a refresh token bound to the service's own client, and later refreshes it into access tokens
of the same subject, groups, scopes and audiences (never more; a refresh may ask for fewer scopes). The tokens it
gets say who acts (`act.sub`, RFC 8693), so the storage elements' logs name both.

Refresh tokens are JWTs signed with the issuer's key, with the issuer as their audience, so that any of the
issuer's processes can check them without shared state: one is useless without the exchanging client's secret,
and it stops working when it expires (`refresh_lifetime`) or the signing key is replaced (docs/security.md).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, UnauthorizedClientError
from authlib.oauth2.rfc6749.grants import BaseGrant, RefreshTokenGrant, TokenEndpointMixin
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from juno_dcs.tokens.scopes import ScopeError, parse_scopes, permitted

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - RFC 8693's names
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"  # noqa: S105
REFRESH_TYP = "juno-refresh+jwt"  # the JOSE header of a refresh token: never taken for an access token
ALG = "ES256"


@dataclass(frozen=True)
class Subject:
    """Whom an exchanged or refreshed token is for: the subject token's claims, carried to the new token."""

    sub: str
    groups: tuple[str, ...]
    audiences: tuple[str, ...]
    scope: str

    def get_user_id(self) -> str:  # Authlib's user interface: the new token's `sub`
        return self.sub


@dataclass(frozen=True)
class RefreshCredential:
    """A verified refresh token, as Authlib's refresh grant asks for it."""

    subject: Subject
    client_id: str
    expires_at: int

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.subject.scope

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return False


class Signer:
    """Decodes the issuer's own tokens (subject tokens and refresh tokens) and signs refresh tokens."""

    def __init__(self, issuer: str, key: ECKey, refresh_lifetime: int) -> None:
        self.issuer = issuer
        self.keys = KeySet([key])
        self.refresh_lifetime = refresh_lifetime

    def _claims(self, token: str, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            decoded = jwt.decode(token, self.keys, algorithms=[ALG])
        except (JoseError, ValueError) as exc:
            raise InvalidGrantError(description=f"the {what} is not a token of this issuer ({exc})") from None
        claims = decoded.claims
        if claims.get("iss") != self.issuer:
            raise InvalidGrantError(description=f"the {what} is not a token of this issuer")
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
            raise InvalidGrantError(description=f"the {what} has expired")
        return decoded.header, claims

    def subject_of(self, token: str) -> Subject:
        header, claims = self._claims(token, "subject_token")
        if header.get("typ") == REFRESH_TYP:
            raise InvalidGrantError(description="the subject_token is a refresh token, not an access token")
        audience = claims.get("aud", [])
        return Subject(sub=str(claims.get("sub", "")), groups=tuple(claims.get("wlcg.groups", [])),
                       audiences=tuple([audience] if isinstance(audience, str) else audience),
                       scope=str(claims.get("scope", "")))

    def refresh_credential(self, token: str) -> RefreshCredential:
        header, claims = self._claims(token, "refresh_token")
        if header.get("typ") != REFRESH_TYP or claims.get("aud") != self.issuer:
            raise InvalidGrantError(description="the refresh_token is not a refresh token")
        subject = Subject(sub=str(claims["sub"]), groups=tuple(claims.get("wlcg.groups", [])),
                          audiences=tuple(claims.get("juno.aud", [])), scope=str(claims.get("scope", "")))
        return RefreshCredential(subject=subject, client_id=str(claims.get("client_id", "")),
                                 expires_at=int(claims["exp"]))

    def refresh_token(self, client: Any, grant_type: str, user: Any, scope: str) -> str:
        """Authlib's refresh-token generator: called for the exchange grant only (refreshes keep theirs)."""
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.issuer, "sub": user.sub, "client_id": client.get_client_id(),
                  "scope": user.scope, "juno.aud": list(user.audiences), "wlcg.groups": list(user.groups),
                  "iat": now, "exp": now + self.refresh_lifetime, "jti": str(uuid.uuid4())}
        return jwt.encode({"alg": ALG, "typ": REFRESH_TYP}, claims, self.keys)


def _may_exchange(client: Any) -> None:
    if not getattr(client.entry, "exchange", False):
        raise UnauthorizedClientError(description=f"client {client.get_client_id()!r} may not exchange tokens")


class TokenExchangeGrant(BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    """RFC 8693: an access token of this issuer (`subject_token`) in, an access token and a refresh token of the
    same subject out, for the exchanging client to use later. `scope`, when given, narrows the scopes."""

    GRANT_TYPE = GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]
    signer: ClassVar[Signer]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        _may_exchange(client)
        form = self.request.form
        token = form.get("subject_token")
        if not token:
            raise InvalidRequestError(description="missing 'subject_token'")
        if form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(description=f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
        wanted = form.get("requested_token_type", REFRESH_TOKEN_TYPE)
        if wanted != REFRESH_TOKEN_TYPE:
            raise InvalidRequestError(description=f"requested_token_type must be {REFRESH_TOKEN_TYPE}")
        subject = self.signer.subject_of(token)
        scope = self.request.payload.scope
        if scope:
            subject = Subject(subject.sub, subject.groups, subject.audiences, narrowed(subject.scope, scope))
        self.request.client = client
        self.request.user = subject

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        subject: Subject = self.request.user
        token = self.generate_token(user=subject, scope=subject.scope, include_refresh_token=True)
        token["issued_token_type"] = REFRESH_TOKEN_TYPE
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class StatelessRefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    """The refresh grant on the signed refresh tokens of `TokenExchangeGrant`; the refresh token stays the same."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]
    INCLUDE_NEW_REFRESH_TOKEN = False
    signer: ClassVar[Signer]

    def validate_token_request(self) -> None:
        super().validate_token_request()
        _may_exchange(self.request.client)

    def _validate_token_scope(self, token: RefreshCredential) -> None:
        """Fewer scopes than the refresh token's may be asked for, a storage path narrowed to one below it."""
        if self.request.payload.scope:
            narrowed(token.get_scope(), self.request.payload.scope)

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential:
        return self.signer.refresh_credential(refresh_token)

    def authenticate_user(self, credential: RefreshCredential) -> Subject:
        subject = credential.subject
        scope = self.request.payload.scope
        return Subject(subject.sub, subject.groups, subject.audiences, scope) if scope else subject

    def revoke_old_credential(self, credential: RefreshCredential) -> None:
        """Nothing to revoke: a refresh token is used until it expires."""


def narrowed(held: str, wanted: str) -> str:
    """`wanted` when every one of its scopes is covered by one of `held`; InvalidGrantError otherwise."""
    try:
        have, want = parse_scopes(held), parse_scopes(wanted)
    except ScopeError as exc:
        raise InvalidRequestError(description=str(exc)) from None
    refused = [str(s) for s in want if not permitted(s, have)]
    if refused:
        raise InvalidGrantError(description="more than the subject token allows: " + " ".join(refused))
    return wanted


def bound_grants(signer: Signer) -> list[type[BaseGrant]]:
    """The two grants, bound to one issuer's signer (each app of a process its own)."""
    return [type("BoundTokenExchangeGrant", (TokenExchangeGrant,), {"signer": signer}),
            type("BoundRefreshGrant", (StatelessRefreshGrant,), {"signer": signer})]
