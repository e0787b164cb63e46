"""Bearer tokens for the grid's storage elements, the way each protocol carries them (the URL side is the policy
package's, juno_rucio_policy.tokens, shared with Rucio's clients):

- davs/https: `Authorization: Bearer <token>`. gfal2's HTTP plugin sends the context's `BEARER TOKEN` option
  (what Rucio's own gfal protocol sets); a third-party copy gives each endpoint its own (juno_dcs.transfer.copier).
- root://: the token in the URL's CGI, `authz=Bearer%20<token>` (`with_token`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from juno_rucio_policy.tokens import redact, with_token

STORAGE_AUDIENCE = "localhost"  # the hostname of the SEs' davs protocols, which Rucio derives audiences from
TokenGetter = Callable[[], str]

__all__ = ["STORAGE_AUDIENCE", "TokenGetter", "authorize", "read_scope", "redact", "with_token", "write_scope"]


def read_scope(*areas: str) -> str:
    return " ".join(f"storage.read:{area}" for area in areas)


def write_scope(*areas: str) -> str:
    """Read, create and modify (overwrite, delete) under each area."""
    return " ".join(f"storage.{action}:{area}" for area in areas for action in ("read", "create", "modify"))


def authorize(ctx: Any, token: str | None) -> None:
    """Make a gfal2 context send `token` as its bearer token over HTTP (none: send nothing). gfal2 would
    otherwise look for a token itself (RETRIEVE_BEARER_TOKEN) or ask for X.509 delegation."""
    ctx.set_opt_boolean("HTTP PLUGIN", "RETRIEVE_BEARER_TOKEN", False)
    if token:
        ctx.set_opt_string("BEARER", "TOKEN", token)
