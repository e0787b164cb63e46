"""Tokens at rest: what a service must keep of a token it was handed (the transfer service, between a
submission and its copy) is stored sealed with a key only the service can read (Fernet: AES-128-CBC and
HMAC-SHA256, from `cryptography`). A database dump, a backup or a query shows no usable token."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from juno_dcs.errors import ConfigError

PREFIX = "sealed:"


def ensure_key(path: Path) -> bool:
    """Make a key file (mode 0600) unless one exists; True when it was made."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key())
    return True


class Sealer:
    def __init__(self, key_file: Path) -> None:
        try:
            if key_file.stat().st_mode & 0o077:
                raise ConfigError(f"{key_file}: readable by others; the token key must be mode 0600")
            self._fernet = Fernet(key_file.read_bytes().strip())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{key_file}: not a usable token key: {exc}") from None

    def seal(self, token: str | None) -> str | None:
        if token is None:
            return None
        return PREFIX + self._fernet.encrypt(token.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        """The token a sealed value holds; None for None or for a value this key cannot open (a key replaced
        after a leak: the copy then runs without the token and the storage refuses it, with its reason)."""
        if stored is None or not stored.startswith(PREFIX):
            return None
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            return None
