"""Rucio keeps the tokens its conveyor and reaper get from the issuer only in memcached (rucio.core.oidc.REGION);
without memcached the region is a null cache and every transfer asks the issuer twice (source and destination),
over a new HTTPS connection each time: 20 ms per grant on a loaded 2-core machine, most of a rule's time.

A JUNO grid runs memcached for its Rucio processes (juno_dcs/grid/cache.py), but not for its reaper, and a
site may run Rucio without one: there this module gives the token region alone a memory backend, per process,
when Rucio left it a null cache. Tokens are kept for their own lifetime; Rucio hands out a cached one only while
enough of it is left (oidc.TOKEN_MIN_LIFETIME).

Rucio's fts3 transfertool also works out each transfer's audiences and scopes anew for every file and endpoint
(`determine_audience_for_rse`, `determine_scope_for_rse`): four reads of the RSE's protocols from the database per
file, 10 ms of the submitter's CPU per file on a 2-core machine, which made a rule a quarter slower with tokens
than without (docs/performance.md, "What tokens cost rules"). `remember_rse_claims` makes the transfertool keep
each answer for `CLAIMS_TTL` seconds per process, as Rucio's own caches of RSE attributes do: a change of an RSE's
davs protocol reaches the claims of new transfers within that time."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

CLAIMS_TTL = 60.0  # seconds


def cache_tokens_in_memory() -> bool:
    """Give Rucio's token region a per-process memory backend if it has none; True when this call did."""
    try:
        from rucio.core import oidc
    except Exception:  # no server side here (a client without rucio.cfg's server sections)
        return False
    region = oidc.REGION
    if type(region.backend).__name__ != "NullBackend":  # dogpile's null cache: Rucio found no memcached
        return False
    region.configure("dogpile.cache.memory", expiration_time=region.expiration_time, replace_existing_backend=True)
    return True


def remembered(func: Callable[..., str], ttl: float = CLAIMS_TTL,
               clock: Callable[[], float] = time.monotonic) -> Callable[..., str]:
    """`func` with each answer kept `ttl` seconds, by its arguments (which must be hashable; iterables of scopes
    are taken as tuples)."""
    kept: dict[tuple[Any, ...], tuple[float, str]] = {}
    lock = threading.Lock()

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        key = (tuple(_frozen(a) for a in args), tuple(sorted((k, _frozen(v)) for k, v in kwargs.items())))
        now = clock()
        with lock:
            found = kept.get(key)
        if found is not None and now - found[0] < ttl:
            return found[1]
        value = func(*args, **kwargs)
        with lock:
            kept[key] = (now, value)
        return value

    wrapper.__wrapped_by_juno__ = True  # type: ignore[attr-defined]
    return wrapper


def _frozen(value: Any) -> Any:
    if isinstance(value, str) or value is None:
        return value
    try:
        return tuple(value)
    except TypeError:
        return value


def remember_rse_claims() -> bool:
    """Make Rucio's fts3 transfertool keep the audiences and scopes it derives from an RSE's protocols for
    CLAIMS_TTL seconds; True when this call did (False: no transfertool here, or done already)."""
    try:
        from rucio.transfertool import fts3
    except Exception:  # a client, or a server without the transfertool's dependencies
        return False
    done = False
    for name in ("determine_audience_for_rse", "determine_scope_for_rse"):
        current = getattr(fts3, name, None)
        if current is None or getattr(current, "__wrapped_by_juno__", False):
            continue
        setattr(fts3, name, remembered(current))
        done = True
    return done
