"""The tokens a job carries, kept usable until its copies are done.

A token handed to the service with a job may run out before its copy starts (the job waited in its queue) or
while it runs (a long copy, then the checksum query at the destination). At submission, while the token is still
valid, the service exchanges it at the issuer for a refresh token of the same subject, scopes and audiences,
bound to the service's own client (`exchange` in transfer.yaml; juno_dcs.issuer.exchange). Both are stored
sealed (juno_dcs.tokens.sealed). When a worker needs the token and it has less left than the copy may take, the
worker refreshes it into a new access token, kept in memory only, until shortly before that one runs out.

Without `exchange`, or when the issuer cannot be reached at submission, the job keeps the token it came with
(logged, with no token in the line): its copies then work while that token lasts, as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from juno_dcs.errors import JunoDcsError, ServiceError
from juno_dcs.tokens.config import ClientAuth
from juno_dcs.tokens.fetch import Credentials, post_grant, token_endpoint
from juno_dcs.tokens.sealed import Sealer

logger = logging.getLogger(__name__)

EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - RFC 8693's names
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"  # noqa: S105
CACHE_SIZE = 4096
CLEANUP_S = 60.0  # what a token needs left for a stat or a delete
MARGIN_S = 60.0  # beyond a copy's timeout


def expires_at(token: str) -> float | None:
    """A JWT's `exp`, read without checking the signature (the holder only needs to know when to refresh);
    None for a token that is not a JWT or has no `exp`."""
    try:
        payload = token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("exp")
    except (IndexError, ValueError, AttributeError):
        return None
    return float(exp) if isinstance(exp, int | float) else None


@dataclass(frozen=True)
class Kept:
    """What is stored (sealed) for one token of a job."""

    access: str
    refresh: str | None = None

    def dumps(self) -> str:
        return json.dumps({"access": self.access, "refresh": self.refresh})

    @staticmethod
    def loads(text: str) -> Kept:
        if not text.startswith("{"):  # stored by a release before refresh tokens: the token alone
            return Kept(access=text)
        data = json.loads(text)
        return Kept(access=str(data["access"]), refresh=data.get("refresh"))


def _key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenKeeper:
    """Thread-safe; one per process (the REST API's and each worker's)."""

    def __init__(self, sealer: Sealer, exchange: ClientAuth | None) -> None:
        self.sealer = sealer
        self.exchange = exchange
        self._credentials: Credentials | None = None
        self._endpoint: str | None = None
        self._refresh_of: OrderedDict[bytes, str] = OrderedDict()  # access token -> its refresh token
        self._fresh: OrderedDict[bytes, str] = OrderedDict()  # refresh token -> the last access token from it
        self._lock = threading.Lock()

    # --- at submission
    def keep_all(self, tokens: Iterable[str]) -> dict[str, str]:
        """Each distinct token of a submission -> what to store for it (sealed)."""
        return {token: self._keep(token) for token in set(tokens)}

    def _keep(self, token: str) -> str:
        refresh = None
        if self.exchange is not None:
            with self._lock:
                refresh = self._refresh_of.get(_key(token))
            if refresh is None:
                try:
                    refresh = self._exchange(token)
                except JunoDcsError as exc:
                    logger.warning("a job keeps the token it came with, without a refresh token: %s", exc)
                else:
                    self._remember(self._refresh_of, _key(token), refresh)
        sealed = self.sealer.seal(Kept(token, refresh).dumps())
        assert sealed is not None  # noqa: S101 - a str in, a str out
        return sealed

    # --- when a copy needs it
    def token(self, stored: str | None, needed_s: float) -> str | None:
        """The token of a stored value with at least `needed_s` seconds left if it can be had (refreshed when
        the one stored has less), else the best one there is (the storage then says why it refuses)."""
        opened = self.sealer.open(stored)
        if opened is None:
            return None
        kept = Kept.loads(opened)
        if kept.refresh is None or self.exchange is None or self._lasts(kept.access, needed_s):
            return kept.access
        with self._lock:
            fresh = self._fresh.get(_key(kept.refresh))
        if fresh is not None and self._lasts(fresh, needed_s):
            return fresh
        try:
            fresh = self._refresh(kept.refresh)
        except JunoDcsError as exc:
            logger.warning("cannot refresh a job's token (the copy goes on with the one it has): %s", exc)
            return kept.access
        self._remember(self._fresh, _key(kept.refresh), fresh)
        return fresh

    @staticmethod
    def _lasts(token: str, needed_s: float) -> bool:
        exp = expires_at(token)
        return exp is None or exp - time.time() >= needed_s

    # --- the issuer
    def _post(self, form: dict[str, str], what: str) -> dict[str, object]:
        assert self.exchange is not None  # noqa: S101 - callers check
        if self._credentials is None:
            self._credentials = self.exchange.credentials()
        if self._endpoint is None:
            self._endpoint = token_endpoint(self._credentials.issuer, self._credentials.ca_file)
        return post_grant(self._credentials, self._endpoint, form, what)

    def _exchange(self, token: str) -> str:
        body = self._post({"grant_type": EXCHANGE_GRANT, "subject_token": token,
                           "subject_token_type": ACCESS_TOKEN_TYPE, "requested_token_type": REFRESH_TOKEN_TYPE},
                          "exchanging a job's token")
        refresh = body.get("refresh_token")
        if not isinstance(refresh, str):
            raise ServiceError("exchanging a job's token: the issuer's answer holds no refresh_token")
        return refresh

    def _refresh(self, refresh: str) -> str:
        body = self._post({"grant_type": "refresh_token", "refresh_token": refresh}, "refreshing a job's token")
        access = body.get("access_token")
        if not isinstance(access, str):
            raise ServiceError("refreshing a job's token: the issuer's answer holds no access_token")
        return access

    def _remember(self, cache: OrderedDict[bytes, str], key: bytes, value: str) -> None:
        with self._lock:
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
