"""HTTP caching of the conditions API, as plain functions of the data (no web framework here).

    payloads by hash   immutable: `public, max-age=<payload_max_age>, immutable`, ETag = "sha256"
    locked tags        `public, max-age=<locked_max_age>`
    open tags          `public, max-age=<open_max_age>` plus Last-Modified: caches revalidate after it
                       (If-None-Match with the ETag, or If-Modified-Since) and get 304 while nothing changed

Last-Modified has whole seconds while a tag's `modified` has microseconds. So that If-Modified-Since never
hides a change, the service sends min(ceil(modified), floor(now)) and answers 304 only when
If-Modified-Since >= ceil(modified): an answer made within the second of the last change is never
revalidated by date (its ETag still is), and any later change makes ceil(modified) pass the date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from email.utils import format_datetime, parsedate_to_datetime

from juno_dcs.conditions.config import ServiceConfig


def cache_control_for_tag(state: str, config: ServiceConfig) -> str:
    max_age = config.locked_max_age if state == "locked" else config.open_max_age
    stale = f", stale-if-error={config.stale_if_error}" if config.stale_if_error else ""
    return f"public, max-age={max_age}{stale}"


def cache_control_for_payload(config: ServiceConfig) -> str:
    return f"public, max-age={config.payload_max_age}, immutable"


NO_STORE = "no-store"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _ceil_seconds(value: dt.datetime) -> int:
    return math.ceil(value.timestamp())


def last_modified(modified: dt.datetime, now: dt.datetime) -> str:
    """The Last-Modified header for data changed last at `modified` (aware UTC), answered at `now`."""
    seconds = min(_ceil_seconds(modified), math.floor(now.timestamp()))
    return format_datetime(dt.datetime.fromtimestamp(seconds, dt.UTC), usegmt=True)


def parse_http_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def not_modified(if_none_match: str | None, if_modified_since: str | None, etag: str,
                 modified: dt.datetime) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; else If-Modified-Since (see the module docstring)."""
    if if_none_match:
        return etag_matches(if_none_match, etag)
    since = parse_http_date(if_modified_since)
    return since is not None and since.timestamp() >= _ceil_seconds(modified)
