"""The issuer's pending authorization codes and its count of failed logins, in one SQLite file that both gunicorn
workers open.

A code is kept by its SHA-256 (the file holds nothing a browser could redeem), lives `CODE_LIFETIME` seconds and is
redeemed at most once: `take` deletes the row in the statement that reads it, so of two workers presented the same
code, one gets it and the other nothing. Expired rows are purged at every save.

Failed logins are counted per account and per client address: `MAX_FAILURES` (`MAX_ADDRESS_FAILURES`) within
`FAILURE_WINDOW` seconds lock the account (the address) until the oldest of them leaves the window. A locked login
is refused before its password is checked (guessing costs the guesser time, and the issuer no PBKDF2 rounds).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

CODE_LIFETIME = 120  # seconds: Rucio redeems the code right after the browser brings it back

SCHEMA = """
CREATE TABLE IF NOT EXISTS codes (
    code_sha256 TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    user_name TEXT NOT NULL,
    nonce TEXT,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS codes_nonce ON codes (client_id, nonce);
CREATE TABLE IF NOT EXISTS login_failures (
    who TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_who ON login_failures (who, at);
"""
FAILURE_WINDOW = 300  # seconds: failed logins of an account, or from an address, are counted this long
MAX_FAILURES = 5  # ... and this many lock an account until the oldest of them is older than the window
MAX_ADDRESS_FAILURES = 20  # ... or an address (higher: people behind one NAT, or on one box, share theirs)


@dataclass(frozen=True)
class AuthorizationCode:
    """A code the issuer handed out: to which client, for which redirect URI and scope, for whom, with which nonce.
    The getters are what Authlib's grants read (AuthorizationCodeMixin of authlib.oidc.core)."""

    client_id: str
    redirect_uri: str
    scope: str
    user_name: str
    nonce: str | None
    auth_time: int
    expires_at: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]

    def is_expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class CodeStore:
    """The codes table. Each call opens its own connection: workers are processes, and a call is one statement."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            path.touch(mode=0o600)
        os.chmod(path, 0o600)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")  # kept in the file: set once, not at every connection
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def save(self, code: str, entry: AuthorizationCode) -> None:
        now = int(time.time())
        with closing(self._connect()) as db:
            db.execute("DELETE FROM codes WHERE expires_at <= ?", (now,))
            db.execute("INSERT INTO codes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (_digest(code), entry.client_id, entry.redirect_uri, entry.scope, entry.user_name, entry.nonce,
                        entry.auth_time, entry.expires_at))

    def take(self, code: str, client_id: str) -> AuthorizationCode | None:
        """The code's entry if it was issued to `client_id` and has not expired; it is gone afterwards either way."""
        with closing(self._connect()) as db:
            row = db.execute("DELETE FROM codes WHERE code_sha256 = ? RETURNING client_id, redirect_uri, scope, "
                             "user_name, nonce, auth_time, expires_at", (_digest(code),)).fetchone()
        if row is None:
            return None
        entry = AuthorizationCode(*row)
        if entry.client_id != client_id or entry.is_expired():
            return None
        return entry

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        """Whether a pending code of `client_id` already carries `nonce` (OpenID Connect: a nonce is used once)."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT 1 FROM codes WHERE client_id = ? AND nonce = ? LIMIT 1",
                             (client_id, nonce)).fetchone()
        return row is not None

    def failed_login(self, account: str, address: str) -> None:
        """Count a failed login against the account and the client's address."""
        now = int(time.time())
        with closing(self._connect()) as db:
            db.execute("DELETE FROM login_failures WHERE at <= ?", (now - FAILURE_WINDOW,))
            db.executemany("INSERT INTO login_failures VALUES (?, ?)",
                           [(f"account:{account}", now), (f"address:{address}", now)])

    def locked_for(self, account: str, address: str) -> int:
        """Seconds until a login of `account` from `address` may be tried again (0: now)."""
        now = int(time.time())
        wait = 0
        with closing(self._connect()) as db:
            for who, limit in ((f"account:{account}", MAX_FAILURES), (f"address:{address}", MAX_ADDRESS_FAILURES)):
                rows = db.execute("SELECT at FROM login_failures WHERE who = ? AND at > ? ORDER BY at DESC LIMIT ?",
                                  (who, now - FAILURE_WINDOW, limit)).fetchall()
                if len(rows) >= limit:
                    wait = max(wait, rows[-1][0] + FAILURE_WINDOW - now)
        return wait
