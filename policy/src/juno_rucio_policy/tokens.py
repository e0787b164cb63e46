"""How JUNO's storage elements take bearer tokens, for every client of them (Rucio's and the grid's own).

Over davs/https a token is the `Authorization: Bearer` header (gfal2's HTTP plugin sends the context's
`BEARER TOKEN`). Over root:// gfal2 sends none, so the token goes into the URL's CGI as `authz=Bearer%20<token>`,
which XRootD's SciTokens plugin reads (over HTTP the SE turns the header into the same `authz`). A URL carrying a
token is a secret: `redact` takes tokens out of any text before it is logged or raised.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_IN_URL = re.compile(r"authz=Bearer(%20|\s|\+)[A-Za-z0-9._~+/=%-]+")
_BEARER = re.compile(r"Bearer\s+[A-Za-z0-9._~+/=-]{20,}")
_TOKEN_SCHEMES = ("root://", "roots://")


def with_token(url: str, token: str | None) -> str:
    """The URL to hand to gfal2: a root:// URL gets the token in its CGI; others are returned unchanged (their
    token travels in a header)."""
    if not token or not url.startswith(_TOKEN_SCHEMES):
        return url
    return f"{url}{'&' if '?' in url else '?'}{authz(token)}"


def authz(token: str) -> str:
    """The CGI element that carries `token` over root:// (`authz=Bearer%20<token>`, what XRootD's SciTokens plugin
    reads)."""
    return f"authz={quote('Bearer ' + token, safe='')}"


def redact(text: str) -> str:
    """`text` without any bearer token in it (URLs with `authz=`, `Bearer ...` headers)."""
    return _BEARER.sub("Bearer <token>", _IN_URL.sub("authz=<token>", text))
