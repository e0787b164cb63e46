"""The storage elements' SciTokens key cache, filled by `juno-dcs up` with the issuer's keys.

XRootD's SciTokens plugin (libscitokens 0.7 in Debian 12) fetches an issuer's discovery document and keys with
libcurl, which checks HTTPS against the system's CA store only and has no setting for another CA; the grid's CA is
not in that store and should not be (a CA of one checkout, trusted by every program of the machine, would also
shadow the CAs of the same name of other checkouts' grids). The plugin looks in its key cache first
($XDG_CACHE_HOME/scitokens/scitokens_cpp.sqllite, table keycache(issuer, keys)), so `up` puts the issuer's JWKS
there, fetched from the issuer over HTTPS checked against the grid's CA: exactly what the plugin would have fetched.
A token naming a key that is not in the cache sends the plugin to the issuer, which it cannot reach: refused. `up`
writes the cache every time, so a new signing key reaches the SEs with the next `up` (docs/security.md).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from juno_dcs.errors import ServiceError
from juno_dcs.tokens import discovery

CACHE_YEARS = 10  # the entry neither expires nor asks for a refresh: `up` replaces it
SCHEMA = "CREATE TABLE IF NOT EXISTS keycache (issuer text UNIQUE PRIMARY KEY NOT NULL, keys text NOT NULL)"


def cache_file(cache_home: Path) -> Path:
    """Where libscitokens keeps its keys for a process whose XDG_CACHE_HOME is `cache_home`."""
    return cache_home / "scitokens" / "scitokens_cpp.sqllite"


def fetch_jwks(issuer_url: str, ca_file: Path | None, timeout: float = 10.0) -> dict[str, Any]:
    """The issuer's key set, found through its discovery document, over HTTPS checked against `ca_file` (None: the
    system's CA store, as for a site's IAM)."""
    try:
        return discovery.key_set(issuer_url, str(ca_file) if ca_file else True, timeout)
    except ServiceError as exc:
        raise ServiceError(f"cannot read the keys of the token issuer for the storage elements: {exc}") from None


def entry(jwks: dict[str, Any], now: float) -> str:
    """The cache's value for one issuer, as libscitokens writes it."""
    until = int(now) + CACHE_YEARS * 365 * 86400
    return json.dumps({"expires": until, "jwks": jwks, "next_update": until}, separators=(",", ":"),
                      sort_keys=True)


def seed(cache_home: Path, issuer_url: str, jwks: dict[str, Any], owner: tuple[int, int]) -> bool:
    """Put the issuer's keys into the cache (owned by `owner`, uid and gid: the xrootd user); True when the keys
    there changed."""
    path = cache_file(cache_home)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(SCHEMA)
        row = db.execute("SELECT keys FROM keycache WHERE issuer = ?", (issuer_url,)).fetchone()
        changed = row is None or json.loads(row[0]).get("jwks") != jwks
        if changed:
            db.execute("INSERT OR REPLACE INTO keycache VALUES (?, ?)", (issuer_url, entry(jwks, time.time())))
    db.close()
    for item in (path.parent, path):
        os.chown(item, *owner)
    path.chmod(0o600)
    return changed
