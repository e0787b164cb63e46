"""Rucio's REST API as a grid serves it: Rucio's own Flask application, but for the one login it cannot finish.

With `RUCIO_AUTH_TYPE=oidc`, the stock `rucio` CLI whose token is refused (expired, or not a token of the grid's
issuer) falls back to Rucio's browser login: it asks `GET /auth/oidc` for a URL, prints it and waits for a code
to be pasted. On a grid that URL leads to the issuer's login form and back to the WebUI, which finishes a WebUI
login (docs/webui.md), so the CLI would wait for a code that never comes, and a script reading no terminal fails
with "EOF when reading a line". Here that route answers 401 with what to do instead; the WebUI starts its own
logins in-process (Rucio's gateway), not through this route. Everything else is Rucio's application unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from rucio.web.rest.flaskapi.v1.main import application as rucio_application

BROWSER_LOGIN = "/auth/oidc"
ADVICE = ("This grid logs the rucio CLI in with a token of its issuer, not through a browser: "
          "eval \"$(juno-dcs env --account NAME)\" writes a fresh one (docs/security.md)")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ.get("PATH_INFO", "").rstrip("/") == BROWSER_LOGIN:
        body = json.dumps({"ExceptionClass": "CannotAuthenticate", "ExceptionMessage": ADVICE}).encode()
        start_response("401 Unauthorized", [("Content-Type", "application/json"),
                                            ("ExceptionClass", "CannotAuthenticate"),
                                            ("ExceptionMessage", ADVICE),
                                            ("Content-Length", str(len(body)))])
        return [body]
    result: Iterable[bytes] = rucio_application(environ, start_response)
    return result
