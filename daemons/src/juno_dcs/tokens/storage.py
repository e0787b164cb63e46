"""Bearer tokens for the grid's storage elements, the way each protocol carries them.

- davs/https: `Authorization: Bearer <token>`. gfal2's HTTP plugin sends the context's `BEARER TOKEN` option
  (what Rucio's own gfal protocol sets); a third-party copy gives each endpoint its own (juno_dcs.transfer.copier).
- root://: gfal2's XRootD plugin sends no token, so the token goes into the URL's CGI as `authz=Bearer%20<token>`,
  which XRootD's SciTokens plugin reads (over HTTP the SE turns the Authorization header into the same `authz`).

A URL that carries a token is a secret: `redact` takes the token out of any text before it is logged or raised.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

STORAGE_AUDIENCE = "localhost"  # the hostname of the SEs' davs protocols, which Rucio derives audiences from
TokenGetter = Callable[[], str]

_IN_URL = re.compile(r"authz=Bearer(%20|\s|\+)[A-Za-z0-9._~+/=%-]+")
_BEARER = re.compile(r"Bearer\s+[A-Za-z0-9._~+/=-]{20,}")


def read_scope(*areas: str) -> str:
    return " ".join(f"storage.read:{area}" for area in areas)


def write_scope(*areas: str) -> str:
    """Read, create and modify (overwrite, delete) under each area."""
    return " ".join(f"storage.{action}:{area}" for area in areas for action in ("read", "create", "modify"))


def with_token(url: str, token: str | None) -> str:
    """The URL to hand to gfal2: a root:// URL gets the token in its CGI; others are unchanged (their token
    travels in a header: `authorize`)."""
    if not token or not url.startswith(("root://", "roots://")):
        return url
    return f"{url}{'&' if '?' in url else '?'}authz={quote('Bearer ' + token, safe='')}"


def authorize(ctx: Any, token: str | None) -> None:
    """Make a gfal2 context send `token` as its bearer token over HTTP (none: send nothing). gfal2 would
    otherwise look for a token itself (RETRIEVE_BEARER_TOKEN) or ask for X.509 delegation."""
    ctx.set_opt_boolean("HTTP PLUGIN", "RETRIEVE_BEARER_TOKEN", False)
    if token:
        ctx.set_opt_string("BEARER", "TOKEN", token)


def redact(text: str) -> str:
    """`text` without any bearer token in it (URLs with `authz=`, `Bearer ...` headers)."""
    return _BEARER.sub("Bearer <token>", _IN_URL.sub("authz=<token>", text))
