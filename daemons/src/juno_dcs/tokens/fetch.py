"""Getting tokens with a client's credentials (the client-credentials grant), kept until shortly before they
expire, and written where WLCG Bearer Token Discovery finds them (`BEARER_TOKEN_FILE`)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests import PreparedRequest
from requests.auth import AuthBase

from juno_dcs.errors import PermissionDenied, ServiceError
from juno_dcs.tokens import discovery

REFRESH_BEFORE = 120  # seconds: a token with less left than this is not handed out again


@dataclass(frozen=True)
class Credentials:
    issuer: str
    client_id: str
    client_secret: str
    ca_file: str | bool = True

    def __repr__(self) -> str:  # never the secret
        return f"Credentials(issuer={self.issuer!r}, client_id={self.client_id!r})"


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float
    scope: str

    def __repr__(self) -> str:
        return f"Token(scope={self.scope!r}, expires_at={self.expires_at:.0f})"


def token_endpoint(issuer: str, ca_file: str | bool) -> str:
    return discovery.endpoint(issuer, "token_endpoint", ca_file)


@dataclass
class TokenSource:
    """Tokens for one client, one per (audience, scope), refreshed before they run out. Thread-safe."""

    credentials: Credentials
    _endpoint: str | None = field(default=None, init=False)
    _cache: dict[tuple[str, str], Token] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def get(self, audience: str, scope: str = "") -> Token:
        key = (audience, scope)
        with self._lock:
            held = self._cache.get(key)
            if held is not None and held.expires_at - time.time() > REFRESH_BEFORE:
                return held
            token = self._request(audience, scope)
            self._cache[key] = token
            return token

    def _request(self, audience: str, scope: str) -> Token:
        creds = self.credentials
        if self._endpoint is None:
            self._endpoint = token_endpoint(creds.issuer, creds.ca_file)
        data = {"grant_type": "client_credentials", "audience": audience}
        if scope:
            data["scope"] = scope
        body = post_grant(creds, self._endpoint, data, f"(audience {audience!r}, scope {scope!r})")
        return Token(value=str(body["access_token"]), expires_at=time.time() + float(body.get("expires_in", 0)),
                     scope=str(body.get("scope", scope)))


def post_grant(creds: Credentials, endpoint: str, form: dict[str, str], what: str) -> dict[str, Any]:
    """One request to the issuer's token endpoint as `creds`' client: its JSON answer, PermissionDenied when the
    issuer refuses (with its error and description), ServiceError when it cannot be asked."""
    try:
        reply = requests.post(endpoint, data=form, auth=(creds.client_id, creds.client_secret), verify=creds.ca_file,
                              timeout=10)
    except requests.RequestException as exc:
        raise ServiceError(f"the token issuer {creds.issuer} is out of reach ({exc.__class__.__name__})") from None
    if reply.status_code in (400, 401, 403):
        try:
            body = reply.json()
            why = f"{body.get('error')}: {body.get('error_description', '')}"
        except ValueError:
            why = reply.text[:200]
        raise PermissionDenied(f"the token issuer refused client {creds.client_id!r} {what}: {why}")
    if reply.status_code != 200:
        raise ServiceError(f"the token issuer answered HTTP {reply.status_code}")
    try:
        body = reply.json()
    except ValueError:
        raise ServiceError("the token issuer's answer is not JSON") from None
    if not isinstance(body, dict):
        raise ServiceError("the token issuer's answer is not a JSON object")
    return body


def write_token_file(path: Path, token: str) -> None:
    """The token alone in a file only its owner can read, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    tmp.replace(path)


def discover_token(environ: dict[str, str] | None = None) -> str | None:
    """WLCG Bearer Token Discovery: BEARER_TOKEN, then BEARER_TOKEN_FILE, then $XDG_RUNTIME_DIR/bt_u<uid>,
    then /tmp/bt_u<uid>."""
    env = os.environ if environ is None else environ
    if env.get("BEARER_TOKEN", "").strip():
        return env["BEARER_TOKEN"].strip()
    candidates = []
    if env.get("BEARER_TOKEN_FILE"):
        candidates.append(Path(env["BEARER_TOKEN_FILE"]))
    else:
        name = f"bt_u{os.getuid()}"
        if env.get("XDG_RUNTIME_DIR"):
            candidates.append(Path(env["XDG_RUNTIME_DIR"]) / name)
        candidates.append(Path("/tmp") / name)  # noqa: S108 - the place the WLCG discovery names
    for path in candidates:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text:
            return text
    return None


@dataclass(frozen=True)
class BearerAuth(AuthBase):
    """The `Authorization` header of one client's token for one audience, fetched when first needed and again
    before it runs out; no header at all without a source (a service that checks no tokens). Also a requests
    `auth=` object."""

    source: TokenSource | None
    audience: str
    scope: str = ""

    def headers(self) -> dict[str, str]:
        if self.source is None:
            return {}
        return {"Authorization": f"Bearer {self.source.get(self.audience, self.scope).value}"}

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers.update(self.headers())
        return request
