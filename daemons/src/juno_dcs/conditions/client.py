"""The conditions client that jobs use, configured like the FroNTier client with proxies and servers:

    client = ConditionsClient(proxies=["http://127.0.0.1:23041"], servers=["http://127.0.0.1:23040"])
    gains = client.payload("JUNO-2026-v1", "pmt_gains", run=1234)         # a PmtGains
    everything = client.conditions("JUNO-2026-v1", run=1234)             # {folder: typed payload}

A job's cold read of a run (`conditions`) is two requests, whatever the number of folders up to MAX_BUNDLE: the
tag's IOV map (GET /v1/tags/{tag}/iovs: every interval of every folder, one document per tag whatever the run, so
a Squid answers every run of the tag from one cache entry and the database sees one map query per tag and max-age),
then every payload the run needs in one bundle (GET /v1/bundles/{sha256},{sha256},..., hashes sorted:
one URL per set, immutable, cached by Squid like a single payload); one payload alone is GET /v1/payloads/{sha256}.
Each request tries the endpoints in order: the proxies (the local Squid first), then the servers directly.
A connection failure, a timeout, a 5xx or a payload whose sha256 is not its name moves on to the next one,
and sets the failed endpoint aside for `retry_after` seconds (all set aside: all are tried again). A 4xx
is the service's answer and is raised at once. When every endpoint has failed, a client made with `retry_for=S`
waits (0.5 s, doubling up to 8 s) and tries them all again until S seconds have passed since the request began:
a job rides out a cut link or a restarting service within its deadline instead of failing at once.
Answers are kept in-process for the job's lifetime:
payloads for good (immutable), lookups for their max-age (a locked tag's is long, an open tag's short).
Only locked tags are read unless `allow_open=True` (production uses locked tags). With `iov_map=False`, or from a
service without maps, or for a tag with more intervals than a map carries (413), the run's lookup
(GET /v1/tags/{tag}/runs/{run}) takes the map's place.

    JunoDcsError
    ├── ConditionsInputError     a malformed tag, folder or run (checked before sending), or a 400
    ├── ConditionsError
    │   ├── NotFound             404: unknown tag, folder or payload, or no interval covers the run
    │   ├── MapTooLarge          413: the tag's IOV map is too large (the client then reads run by run)
    │   └── OpenTagRefused       the tag is open and allow_open is False
    └── ServiceError
        └── Unavailable
            └── ConditionsUnavailable  every endpoint failed (transient, exit 3); `attempts` lists (url, reason)

One client per thread (it holds a requests.Session).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from juno_dcs.conditions.errors import ConditionsError, ConditionsInputError, MapTooLarge, NotFound
from juno_dcs.conditions.models import MAX_RUN, Payload, check_hash, check_name, decode_payload
from juno_dcs.errors import Unavailable

logger = logging.getLogger(__name__)
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)")
MAX_BUNDLE = 12  # payloads in one GET /v1/bundles/... (the service's limit)
_CORRUPT = "payload bytes do not match their sha256"


class OpenTagRefused(ConditionsError):
    """The tag is still open; production reads locked tags only."""


class ConditionsUnavailable(Unavailable):
    """No proxy and no server gave an answer (transient: a payload exits 3, worth retrying)."""

    def __init__(self, message: str, attempts: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass(frozen=True)
class PayloadRef:
    folder: str
    payload_type: str
    first_run: int
    last_run: int
    payload_hash: str
    payload_size: int


@dataclass
class ClientStats:
    requests: dict[str, int] = field(default_factory=dict)  # per endpoint, answered or not
    failures: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0


def _max_age(headers: Any) -> float:
    match = _MAX_AGE.search(headers.get("cache-control", "") or "")
    if match is None:
        return 0.0
    try:
        age = float(headers.get("age", 0) or 0)
    except ValueError:
        age = 0.0
    return max(0.0, int(match[1]) - age)


class ConditionsClient:
    def __init__(self, proxies: Sequence[str] = (), servers: Sequence[str] = (), *, connect_timeout: float = 2.0,
                 read_timeout: float = 10.0, retry_after: float = 60.0, allow_open: bool = False,
                 cache: bool = True, session: requests.Session | None = None, retry_for: float = 0.0,
                 retry_pause: float = 0.5, iov_map: bool = True) -> None:
        self.endpoints = [u.rstrip("/") for u in (*proxies, *servers)]
        if not self.endpoints:
            raise ConditionsInputError("the conditions client needs at least one proxy or server URL")
        self.timeout = (connect_timeout, read_timeout)
        self.retry_after = retry_after
        self.retry_for = retry_for
        self.retry_pause = retry_pause
        self.allow_open = allow_open
        self.iov_map = iov_map
        self._no_map: set[str] = set()  # tags read run by run (no map route, or too large)
        self._maps: dict[str, tuple[Any, dict[str, tuple[str, list[list[Any]]]]]] = {}  # tag -> (document, parsed)
        self.cache = cache
        self.session = session or requests.Session()
        self.stats = ClientStats()
        self.last_endpoint: str | None = None
        self._set_aside: dict[str, float] = {}
        self._answers: dict[str, tuple[float, Any]] = {}
        self._payloads: dict[str, bytes] = {}
        self._decoded: dict[tuple[str, str], Payload] = {}

    # --- transport
    def _order(self) -> list[str]:
        now = time.monotonic()
        ready = [e for e in self.endpoints if self._set_aside.get(e, 0.0) <= now]
        return ready or list(self.endpoints)

    def _get(self, path: str, verify: Callable[[bytes], str | None] | None = None) -> requests.Response:
        """The first endpoint's good answer to GET `path`; `verify(body)` returns why a body is bad, or None.
        Every endpoint failed: again after a pause while `retry_for` allows, then ConditionsUnavailable."""
        deadline, pause = time.monotonic() + self.retry_for, self.retry_pause
        while True:
            try:
                return self._get_once(path, verify)
            except ConditionsUnavailable:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                logger.warning("conditions: no endpoint answered %s; again in %.1f s", path, min(pause, left))
                time.sleep(min(pause, left))
                pause = min(2 * pause, 8.0)

    def _get_once(self, path: str, verify: Callable[[bytes], str | None] | None) -> requests.Response:
        attempts: list[tuple[str, str]] = []
        for endpoint in self._order():
            self.stats.requests[endpoint] = self.stats.requests.get(endpoint, 0) + 1
            reason = self._try(endpoint, path, verify)
            if isinstance(reason, requests.Response):
                self._set_aside.pop(endpoint, None)
                self.last_endpoint = endpoint
                return reason
            attempts.append((endpoint, reason))
            self.stats.failures[endpoint] = self.stats.failures.get(endpoint, 0) + 1
            self._set_aside[endpoint] = time.monotonic() + self.retry_after
            logger.warning("conditions: %s%s failed (%s); trying the next endpoint", endpoint, path, reason)
        tried = "; ".join(f"{u}: {r}" for u, r in attempts)
        raise ConditionsUnavailable(f"no conditions endpoint answered {path} ({tried})", attempts)

    def _try(self, endpoint: str, path: str,
             verify: Callable[[bytes], str | None] | None) -> requests.Response | str:
        try:
            reply = self.session.get(endpoint + path, timeout=self.timeout)
        except requests.Timeout:
            return "timeout"
        except requests.RequestException as exc:
            return f"{exc.__class__.__name__}"
        if reply.status_code >= 500:
            return f"HTTP {reply.status_code}"
        if reply.status_code == 400:
            raise ConditionsInputError(self._detail(reply))
        if reply.status_code == 404:
            raise NotFound(self._detail(reply))
        if reply.status_code == 413:
            raise MapTooLarge(self._detail(reply))
        if reply.status_code != 200:
            return f"HTTP {reply.status_code}"
        problem = verify(reply.content) if verify is not None else None
        return reply if problem is None else problem

    @staticmethod
    def _detail(reply: requests.Response) -> str:
        try:
            return str(reply.json()["detail"])
        except (ValueError, KeyError, TypeError):
            return f"HTTP {reply.status_code} from {reply.url}"

    def _json(self, path: str) -> Any:
        now = time.monotonic()
        if self.cache and path in self._answers and self._answers[path][0] > now:
            self.stats.cache_hits += 1
            return self._answers[path][1]
        reply = self._get(path)
        document = reply.json()
        if self.cache:
            self._answers[path] = (now + _max_age(reply.headers), document)
        return document

    def _check_state(self, tag: str, state: str) -> None:
        if state != "locked" and not self.allow_open:
            raise OpenTagRefused(f"global tag {tag!r} is {state}; production reads locked tags "
                                 "(allow_open=True to read it anyway)")

    # --- the API
    @staticmethod
    def _run(run: int) -> int:
        if not isinstance(run, int) or not 0 <= run <= MAX_RUN:
            raise ConditionsInputError(f"run {run!r}: expected an integer from 0 to {MAX_RUN}")
        return run

    def refs(self, tag: str, run: int) -> dict[str, PayloadRef]:
        """Every folder's payload reference for a run (folders with no interval covering it are absent): from the
        tag's IOV map, or from the run's lookup where there is no map."""
        path = f"/v1/tags/{check_name(tag, 'global tag')}/runs/{self._run(run)}"
        if self.iov_map and tag not in self._no_map:
            try:
                state, found = self._from_map(tag, run)
            except (NotFound, MapTooLarge) as exc:  # an unknown tag is named again by the run's lookup
                logger.info("conditions: no IOV map of %s (%s); reading it run by run", tag, exc)
                self._no_map.add(tag)
            else:
                self._check_state(tag, state)
                return found
        document = self._json(path)
        self._check_state(tag, document["tag_state"])
        return {name: self._ref(ref) for name, ref in document["folders"].items()}

    def _from_map(self, tag: str, run: int) -> tuple[str, dict[str, PayloadRef]]:
        """The tag's state and the run's references, resolved from its IOV map as the service resolves a lookup:
        per folder, the newest interval that covers the run."""
        document = self._json(f"/v1/tags/{tag}/iovs")
        held = self._maps.get(tag)
        if held is None or held[0] is not document:
            held = (document, {name: (str(f["payload_type"]), f["iovs"]) for name, f in document["folders"].items()})
            self._maps[tag] = held
        found: dict[str, PayloadRef] = {}
        for name in sorted(held[1]):
            payload_type, iovs = held[1][name]
            for first, last, digest, size in reversed(iovs):
                if first <= run <= last:
                    found[name] = PayloadRef(folder=name, payload_type=payload_type, first_run=int(first),
                                             last_run=int(last), payload_hash=str(digest), payload_size=int(size))
                    break
        return str(document["tag_state"]), found

    def ref(self, tag: str, folder: str, run: int) -> PayloadRef:
        path = f"/v1/tags/{check_name(tag, 'global tag')}/folders/{check_name(folder, 'folder')}/runs/{self._run(run)}"
        document = self._json(path)
        self._check_state(tag, document["tag_state"])
        return self._ref(document["payload"])

    @staticmethod
    def _ref(ref: dict[str, Any]) -> PayloadRef:
        return PayloadRef(folder=ref["folder"], payload_type=ref["payload_type"], first_run=ref["first_run"],
                          last_run=ref["last_run"], payload_hash=ref["payload_hash"], payload_size=ref["payload_size"])

    def payload_bytes(self, digest: str) -> bytes:
        """A payload's bytes by sha256 (checked)."""
        check_hash(digest)
        if self.cache and digest in self._payloads:
            self.stats.cache_hits += 1
            return self._payloads[digest]
        def verify(content: bytes) -> str | None:
            return None if hashlib.sha256(content).hexdigest() == digest else _CORRUPT

        data = self._get(f"/v1/payloads/{digest}", verify).content
        if self.cache:
            self._payloads[digest] = data
        return data

    def fetch(self, refs: Iterable[PayloadRef]) -> dict[str, bytes]:
        """The bytes of the payloads of `refs` by sha256 (checked), in as few requests as can be: none for those
        held in-process, one GET /v1/payloads/{sha256} for one, one bundle per MAX_BUNDLE for more."""
        sizes = {r.payload_hash: r.payload_size for r in refs}
        found = {d: self._payloads[d] for d in sizes if self.cache and d in self._payloads}
        self.stats.cache_hits += len(found)
        missing = sorted(set(sizes) - set(found))
        for start in range(0, len(missing), MAX_BUNDLE):
            chunk = missing[start:start + MAX_BUNDLE]
            found.update(self._bundle(chunk, [sizes[d] for d in chunk]) if len(chunk) > 1
                         else {chunk[0]: self.payload_bytes(chunk[0])})
        return found

    def _bundle(self, digests: list[str], sizes: list[int]) -> dict[str, bytes]:
        parts: dict[str, bytes] = {}

        def verify(content: bytes) -> str | None:
            if len(content) != sum(sizes):
                return f"a bundle of {len(content)} bytes, expected {sum(sizes)}"
            offset = 0
            for digest, size in zip(digests, sizes, strict=True):
                part = content[offset:offset + size]
                offset += size
                if hashlib.sha256(part).hexdigest() != digest:
                    return _CORRUPT
                parts[digest] = part
            return None

        try:
            self._get("/v1/bundles/" + ",".join(digests), verify)
        except NotFound:
            # a service older than bundles has no such route; a payload that is really missing is named by its own 404
            return {d: self.payload_bytes(d) for d in digests}
        if self.cache:
            self._payloads.update(parts)
        return parts

    def decoded(self, ref: PayloadRef, data: bytes | None = None) -> Payload:
        """The typed payload of `ref` (its bytes fetched unless given)."""
        key = (ref.payload_hash, ref.payload_type)
        if self.cache and key in self._decoded:
            return self._decoded[key]
        value = decode_payload(ref.payload_type, self.payload_bytes(ref.payload_hash) if data is None else data,
                               where=f"payload {ref.payload_hash} of folder {ref.folder}")
        if self.cache:
            self._decoded[key] = value
        return value

    def payload(self, tag: str, folder: str, run: int) -> Payload:
        """The typed payload of `folder` for `run` in `tag`."""
        return self.decoded(self.ref(tag, folder, run))

    def conditions(self, tag: str, run: int, folders: Sequence[str] | None = None) -> dict[str, Payload]:
        """The typed payloads of every folder (or of `folders`, each of which must exist) for `run`: the lookup,
        then the payloads not held yet in one bundle (two requests for a cold read)."""
        refs = self.refs(tag, run)
        if folders is not None:
            missing = [f for f in folders if f not in refs]
            if missing:
                raise NotFound(f"global tag {tag!r} has no payload for run {run} in folder(s) {', '.join(missing)}")
            refs = {f: refs[f] for f in folders}
        data = self.fetch(ref for ref in refs.values()
                          if not (self.cache and (ref.payload_hash, ref.payload_type) in self._decoded))
        return {name: self.decoded(ref, data.get(ref.payload_hash)) for name, ref in refs.items()}

    def close(self) -> None:
        self.session.close()
