"""The token settings of a service's configuration file, both sides:

- `ServiceAuth`: a service that checks tokens (the issuer's URL, the audiences it answers to, the CA that
  vouches for the issuer). A site's IAM replaces the grid's issuer by changing `issuer` (and `ca_file`) alone.
- `ClientAuth`: a program that acts as one client of the issuer (its id, the file holding its secret, mode
  0600). The secret is read when a token is needed and never kept in the configuration itself.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from juno_dcs.errors import ConfigError
from juno_dcs.tokens.fetch import Credentials, TokenSource
from juno_dcs.tokens.verify import Identity, Verifier

HttpsUrl = Annotated[str, Field(pattern=r"^https://")]


class ServiceAuth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: HttpsUrl = Field(description="The token issuer's identifier (`iss`), exactly as in its tokens.")
    audiences: list[str] = Field(min_length=1, description="A token must name one of these in `aud`.")
    ca_file: Path | None = Field(default=None, description="The CA that signed the issuer's certificate "
                                 "(default: the system's).")
    admin_group: str = Field(default="/juno/admin", description="`wlcg.groups` entry of those who may act on "
                             "everything.")
    reader_groups: list[str] = Field(default=["/juno/admin", "/juno/ops"], description="`wlcg.groups` entries "
                                     "of those who may read everything.")

    def verifier(self) -> Verifier:
        return Verifier(issuer=self.issuer, audiences=tuple(self.audiences),
                        ca_file=str(self.ca_file) if self.ca_file else True)


class ClientAuth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: HttpsUrl
    client_id: str = Field(min_length=1)
    secret_file: Path = Field(description="A file (mode 0600) holding the client's secret.")
    ca_file: Path | None = None

    def credentials(self) -> Credentials:
        try:
            mode = self.secret_file.stat().st_mode & 0o777
            secret = self.secret_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{self.secret_file}: cannot read client {self.client_id!r}'s secret: {exc}") from None
        if mode & 0o077:
            raise ConfigError(f"{self.secret_file}: mode {mode:o}; a client secret must be readable by its owner "
                              "only (chmod 600)")
        return Credentials(issuer=self.issuer, client_id=self.client_id, client_secret=secret,
                           ca_file=str(self.ca_file) if self.ca_file else True)

    def source(self) -> TokenSource:
        return TokenSource(self.credentials())


class IdentityCache:
    """Verified identities by the SHA-256 of their token, until the token expires: a token is checked once per
    process, not once per request. Bounded (least recently used go first); thread-safe."""

    def __init__(self, verifier: Verifier, size: int = 4096) -> None:
        self.verifier = verifier
        self.size = size
        self._known: OrderedDict[bytes, Identity] = OrderedDict()
        self._lock = threading.Lock()

    def known(self, token: str) -> Identity | None:
        """The identity of a token verified before and not expired yet; None otherwise (nothing is fetched or
        verified: an async caller may call this in its event loop, and `identify` in a thread on a miss)."""
        key = hashlib.sha256(token.encode()).digest()
        with self._lock:
            known = self._known.get(key)
            if known is not None and known.expires > time.time():
                self._known.move_to_end(key)
                return known
        return None

    def identify(self, token: str) -> Identity:
        known = self.known(token)
        if known is not None:
            return known
        identity = self.verifier.verify(token)
        key = hashlib.sha256(token.encode()).digest()
        with self._lock:
            self._known[key] = identity
            while len(self._known) > self.size:
                self._known.popitem(last=False)
        return identity
