"""Checking a bearer token: signature against the issuer's published keys, issuer, audience, time, profile.

The keys come from the issuer's discovery document (`jwks_uri`) over HTTPS, checked against the grid's CA (or
the system's, for a site's IAM); they are cached and fetched again when a token names a key not seen yet (a key
rotation), at most once per `refetch_after` seconds so that made-up key ids cannot make the service hammer the
issuer. Only asymmetric algorithms are accepted (ES256, RS256): `alg: none` and HS256 tokens are refused before
any key is looked at. A refusal is `Unauthenticated` (HTTP 401) with the reason; the token itself is never put
in a message or a log.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from juno_dcs.errors import PermissionDenied, ServiceError, Unauthenticated
from juno_dcs.tokens import discovery
from juno_dcs.tokens.scopes import Scope, ScopeError, parse_scopes, storage_permits

ALGORITHMS = ("ES256", "RS256")
LEEWAY = 60  # seconds of clock difference tolerated on exp, nbf and iat


@dataclass(frozen=True)
class Identity:
    """Who a valid token speaks for, and what it allows."""

    subject: str
    client_id: str
    scopes: tuple[Scope, ...]
    groups: tuple[str, ...]
    expires: int
    token_id: str

    def has_scope(self, name: str) -> bool:
        return any(s.name == name and s.path is None for s in self.scopes)

    def in_group(self, group: str) -> bool:
        return group in self.groups

    def may_storage(self, action: str, path: str) -> bool:
        return storage_permits(list(self.scopes), action, path)

    def require_scope(self, name: str, what: str) -> None:
        if not self.has_scope(name):
            raise PermissionDenied(f"{what} needs a token with scope {name!r}; {self.subject}'s token has: "
                                   + (" ".join(str(s) for s in self.scopes) or "none"))


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header; Unauthenticated when there is none."""
    if not authorization:
        raise Unauthenticated("no credential: send a token as 'Authorization: Bearer <token>'")
    kind, _, token = authorization.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header is not 'Bearer <token>'")
    return token.strip()


@dataclass
class Verifier:
    """Checks tokens of one issuer for one audience (or any of several)."""

    issuer: str
    audiences: tuple[str, ...]
    ca_file: str | bool = True  # requests' `verify`: the grid CA's file, or True for the system's
    refetch_after: float = 30.0
    static_keys: KeySet | None = None  # pinned keys: never fetched (an offline service, the unit tests)
    _keys: KeySet | None = field(default=None, init=False)
    _fetched: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def _fetch_keys(self) -> KeySet:
        try:
            return KeySet.import_key_set(discovery.key_set(self.issuer, self.ca_file))  # type: ignore[arg-type]
        except (ServiceError, ValueError, KeyError, JoseError) as exc:
            raise Unauthenticated(f"cannot check the token: {exc}") from None

    def keys(self, kid: str | None) -> KeySet:
        if self.static_keys is not None:
            return self.static_keys
        with self._lock:
            known = self._keys is not None and (kid is None or any(k.kid == kid for k in self._keys.keys))
            stale = time.monotonic() - self._fetched > self.refetch_after
            if self._keys is None or (not known and stale):
                self._keys = self._fetch_keys()
                self._fetched = time.monotonic()
            return self._keys

    def verify(self, token: str) -> Identity:
        try:
            # unverified: only to refuse bad algorithms and to find the key
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError) as exc:
            raise Unauthenticated(f"the token is not a signed JWT ({exc.__class__.__name__})") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise Unauthenticated(f"the token's algorithm {alg!r} is not accepted (only {', '.join(ALGORITHMS)})")
        keys = self.keys(header.get("kid"))
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise Unauthenticated(f"the token's signature does not verify with the issuer's keys "
                                  f"({exc.__class__.__name__})") from None
        return self.check_claims(decoded.claims)

    def check_claims(self, claims: dict[str, Any], now: float | None = None) -> Identity:
        now = time.time() if now is None else now
        if claims.get("iss") != self.issuer:
            raise Unauthenticated(f"the token was issued by {claims.get('iss')!r}, not by {self.issuer!r}")
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else list(aud or [])
        if not any(a in self.audiences for a in auds):
            raise Unauthenticated(f"the token is for {' '.join(map(str, auds)) or 'no audience'}, "
                                  f"not for {' or '.join(self.audiences)}")
        for name in ("exp", "iat", "sub", "jti"):
            if name not in claims:
                raise Unauthenticated(f"the token has no {name!r} claim (WLCG profile)")
        if not isinstance(claims["exp"], int | float) or now > claims["exp"] + LEEWAY:
            raise Unauthenticated("the token has expired")
        nbf = claims.get("nbf", claims["iat"])
        if not isinstance(nbf, int | float) or now < nbf - LEEWAY:
            raise Unauthenticated("the token is not valid yet (nbf in the future)")
        try:
            scopes = tuple(parse_scopes(str(claims.get("scope", ""))))
        except ScopeError as exc:
            raise Unauthenticated(f"the token's scope is not valid: {exc}") from None
        groups = claims.get("wlcg.groups") or []
        return Identity(subject=str(claims["sub"]), client_id=str(claims.get("client_id", "")), scopes=scopes,
                        groups=tuple(str(g) for g in groups), expires=int(claims["exp"]),
                        token_id=str(claims["jti"]))
