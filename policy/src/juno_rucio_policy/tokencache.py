"""Rucio keeps the tokens its conveyor and reaper get from the issuer only in memcached (rucio.core.oidc.REGION);
without memcached the region is a null cache and every transfer asks the issuer twice (source and destination),
over a new HTTPS connection each time: 20 ms per grant on a loaded 2-core machine, most of a rule's time.

A JUNO grid runs no memcached: with it, every Rucio region would cache as well (RSE availability, the config
table, RSE expressions, for up to 15 minutes), and an operator's change would wait that long. So this module gives
the token region alone a memory backend, per process, when Rucio left it a null cache. Tokens are kept for their
own lifetime; Rucio hands out a cached one only while enough of it is left (oidc.TOKEN_MIN_LIFETIME)."""

from __future__ import annotations


def cache_tokens_in_memory() -> bool:
    """Give Rucio's token region a per-process memory backend if it has none; True when this call did."""
    try:
        from dogpile.cache.backends.null import NullBackend
        from rucio.core import oidc
    except Exception:  # no server side here (a client without rucio.cfg's server sections)
        return False
    region = oidc.REGION
    if not isinstance(region.backend, NullBackend):
        return False
    region.configure("dogpile.cache.memory", expiration_time=region.expiration_time, replace_existing_backend=True)
    return True
