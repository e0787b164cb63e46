"""The dispatcher's clients send a token with every call (docs/security.md, "The dispatcher"). A token provider
is a function that answers the token to send now:

- `user_token()`: a person's, found by WLCG Bearer Token Discovery (`BEARER_TOKEN`, `BEARER_TOKEN_FILE`, ...)
  every time it is asked, so a token file refreshed meanwhile is picked up (jsub, juno-wms, juno-prod's commands).
- `client_token(auth, ...)`: a program's own, from its client credentials (the secret in its 0600 file), kept
  and refreshed before it runs out by juno_dcs.tokens.fetch.TokenSource (juno-prod run, the pilot factory, pilots,
  the dashboard, the probes).

Neither ever logs or prints a token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from juno_dcs.errors import ConfigError
from juno_dcs.tokens.config import ClientAuth
from juno_dcs.tokens.fetch import TokenSource, discover_token

TokenProvider = Callable[[], str]
AUDIENCE = "juno-wms"  # the grid's dispatcher (juno_dcs.grid.issuer.WMS_AUDIENCE)
USER_SCOPES = "compute.create compute.read compute.modify compute.cancel"
PILOT_SCOPES = "compute.read compute.modify"
READ_SCOPES = "compute.read"
MISSING = ("no token for the dispatcher: run eval \"$(juno-dcs env --account NAME)\" first (it sets "
           "BEARER_TOKEN_FILE), or set BEARER_TOKEN or BEARER_TOKEN_FILE yourself (WLCG Bearer Token Discovery)")


class NoToken(ConfigError):
    """No token was found where WLCG Bearer Token Discovery looks."""


def user_token(environ: Mapping[str, str] | None = None) -> TokenProvider:
    def token() -> str:
        found = discover_token(None if environ is None else dict(environ))
        if found is None:
            raise NoToken(MISSING)
        return found

    return token


class _ClientToken:
    """Made when the program starts; its TokenSource (which reads the secret file) on first use."""

    def __init__(self, auth: ClientAuth, audience: str, scope: str) -> None:
        self.auth, self.audience, self.scope = auth, audience, scope
        self._source: TokenSource | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._source is None:
                self._source = self.auth.source()
            source = self._source
        return source.get(self.audience, self.scope).value


def client_token(auth: ClientAuth, audience: str = AUDIENCE, scope: str = USER_SCOPES) -> TokenProvider:
    return _ClientToken(auth, audience, scope)
