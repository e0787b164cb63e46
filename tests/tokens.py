"""Tokens for tests: a local signing key standing in for an issuer (unit tests), and forged tokens of every
kind a hostile caller might send (unit and integration tests). Real tokens of a grid come from its issuer
(Grid.token)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(issuer: str, audience: str | list[str], subject: str, scope: str = "", groups: list[str] | None = None,
           lifetime: int = 600, not_before: float | None = None, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {"iss": issuer, "aud": audience, "sub": subject, "scope": scope, "iat": now,
                           "nbf": int(not_before if not_before is not None else now), "exp": now + lifetime,
                           "jti": uuid.uuid4().hex, "wlcg.ver": "1.0", "client_id": subject}
    if groups is not None:
        out["wlcg.groups"] = groups
    out.update(extra)
    return out


@dataclass
class LocalIssuer:
    """A key pair that signs like the grid's issuer: for services tested without a grid."""

    issuer: str = "https://issuer.test/"
    key: ECKey | None = None

    def __post_init__(self) -> None:
        if self.key is None:
            generated = ECKey.generate_key("P-256")
            self.key = ECKey.import_key(generated.as_dict(private=True, kid=generated.thumbprint()))

    @property
    def keys(self) -> KeySet:
        assert self.key is not None
        return KeySet([self.key])

    def public_jwks(self) -> dict[str, Any]:
        return self.keys.as_dict(private=False)

    def sign(self, payload: dict[str, Any]) -> str:
        return jwt.encode({"alg": "ES256", "typ": "at+jwt"}, payload, self.keys)

    def token(self, audience: str | list[str], subject: str, scope: str = "", groups: list[str] | None = None,
              **extra: Any) -> str:
        return self.sign(claims(self.issuer, audience, subject, scope, groups, **extra))


def other_key_token(payload: dict[str, Any]) -> str:
    """Signed by a key the issuer never published, with the same header shape."""
    return LocalIssuer().sign(payload)


def alg_none_token(payload: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    return f"{header}.{b64(json.dumps(payload).encode())}."


def hs256_with_public_key(payload: dict[str, Any], public_jwks: dict[str, Any]) -> str:
    """The classic confusion attack: an HMAC token whose secret is the issuer's published key."""
    secret = json.dumps(public_jwks["keys"][0], sort_keys=True).encode()
    return jwt.encode({"alg": "HS256", "typ": "at+jwt"}, payload, OctKey.import_key(secret),
                      algorithms=["HS256"])


def rsa_token(payload: dict[str, Any]) -> str:
    key = RSAKey.generate_key(2048)
    return jwt.encode({"alg": "RS256"}, payload, key)


def hostile_tokens(issuer: LocalIssuer | None, grid_issuer: str, audience: str, subject: str, scope: str,
                   public_jwks: dict[str, Any], groups: list[str] | None = None) -> dict[str, str | None]:
    """Forged or unfit tokens by name, for `issuer_url`'s services at `audience`; None is no token at all.
    `issuer` (a LocalIssuer holding the real key) signs the ones that only break a claim; without it, those
    are left out."""
    good = claims(grid_issuer, audience, subject, scope, groups)
    cases: dict[str, str | None] = {
        "no token": None,
        "garbage": "not-a-jwt",
        "signed by another key": other_key_token(good),
        "alg none": alg_none_token(good),
        "HS256 with the public key": hs256_with_public_key(good, public_jwks),
        "RS256 by a stranger": rsa_token(good),
    }
    if issuer is not None:
        cases.update({
            "expired": issuer.sign({**good, "exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200,
                                    "nbf": int(time.time()) - 7200}),
            "not yet valid": issuer.sign({**good, "nbf": int(time.time()) + 3600}),
            "wrong audience": issuer.sign({**good, "aud": "https://elsewhere.example.org"}),
            "wrong issuer": issuer.sign({**good, "iss": "https://evil.example.org/"}),
            "no subject": issuer.sign({k: v for k, v in good.items() if k != "sub"}),
        })
    return cases
