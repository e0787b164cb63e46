"""Tokens a hostile caller could make, for the services' token tests: the WLCG claims of the grid's issuer, signed
with the issuer's own key (to test one claim at a time: expiry, audience, issuer), with another key, with
`alg: none`, or with HS256 keyed by the issuer's public key (the algorithm-confusion attack). Valid tokens come
from the grid's real issuer (Grid.token), never from here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Forger:
    """Claims and signatures of one grid's issuer (its URL, its key file in the home's secrets)."""

    issuer: str
    key_file: Path

    @classmethod
    def of(cls, grid_home: Path) -> Forger:
        from juno_dcs.grid import issuer
        from juno_dcs.grid.home import GridHome

        home = GridHome(grid_home)
        where = issuer.layout(home, home.load_state())
        return cls(issuer=where.url, key_file=where.key)

    def issuer_key(self) -> ECKey:
        key = ECKey.import_key(self.key_file.read_bytes())
        return ECKey.import_key(key.as_dict(private=True, kid=key.thumbprint()))

    def claims(self, subject: str, scope: str = "compute.create compute.read compute.modify compute.cancel",
               groups: tuple[str, ...] = ("/juno",), audience: str = "juno-wms", **changes: Any) -> dict[str, Any]:
        """What the grid's issuer would put in `subject`'s token; `changes` replace claims (None drops one)."""
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "sub": subject, "aud": audience, "scope": scope,
                                  "exp": now + 600, "iat": now, "nbf": now, "jti": str(uuid.uuid4()),
                                  "wlcg.ver": "1.0", "wlcg.groups": list(groups), "client_id": subject}
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def signed_by_issuer(self, claims: dict[str, Any]) -> str:
        """Signed with the issuer's real key: only the claims can be wrong."""
        key = self.issuer_key()
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, claims, key)

    def signed_by_another_key(self, claims: dict[str, Any], same_kid: bool = True) -> str:
        """ES256 with a fresh key; `same_kid`: naming the issuer's key id, so the verifier tries the real key."""
        other = ECKey.generate_key("P-256")
        kid = self.issuer_key().kid if same_kid else other.thumbprint()
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims, other)

    def unsigned(self, claims: dict[str, Any]) -> str:
        """`alg: none` and an empty signature."""
        return f"{_segment({'alg': 'none', 'typ': 'at+jwt'})}.{_segment(claims)}."

    def hs256_with_public_key(self, claims: dict[str, Any]) -> str:
        """HS256 keyed by the issuer's public key in PEM: what a verifier that trusts the header's `alg` accepts."""
        public = self.issuer_key().as_pem(private=False)
        head = {"alg": "HS256", "typ": "at+jwt", "kid": self.issuer_key().kid}
        signing_input = f"{_segment(head)}.{_segment(claims)}"
        signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"
