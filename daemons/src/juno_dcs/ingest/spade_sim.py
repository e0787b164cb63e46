"""The SPADE simulator: raw files written to IHEP_DISK and "file arrived" messages published on Kafka, the way
JUNO's detector data transfer system (SPADE) delivers them, with faults on demand.

    SimPlan --deliveries()--> Delivery (name, received_at, size, fault, message)
                                 |-- Gfal2Writer (a few threads) --> the file's random bytes at IHEP_DISK (root://)
                                 '-- Publisher (paced by a Pacer) --> Kafka: key = file name, value = FileArrived JSON

`deliveries` is pure: the same plan gives the same names, contents, checksums, faults and messages. Simulated
time runs faster than real time: the receiving times are spread evenly over the plan's days, while the messages
go out as fast as the rate allows. A message is published only after its file is at the SE, in plan order.

Faults are fractions of the files; each becomes an exact count, round(fraction * files), and the seed chooses
the files. malformed, wrong_checksum and missing_file are disjoint (a file has at most one of them);
duplicate is independent of them: that message (good or not) is published once more a few messages later.

    malformed       the file is written, its message is broken in one of MALFORMED_KINDS (taken in turn)
    wrong_checksum  the file is written, the message's adler32 differs from the bytes'
    missing_file    a good message for a file that was never written
"""

from __future__ import annotations

import datetime as dt
import errno
import heapq
import json
import logging
import random
import re
import tempfile
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from juno_dcs.errors import ConfigError, ServiceError
from juno_dcs.ingest.message import RAW_SCOPE, SCHEMA_VERSION, FileArrived
from juno_dcs.tokens.storage import TokenGetter, authorize, redact, with_token
from juno_rucio_policy import naming
from juno_rucio_policy.paths import path_for

logger = logging.getLogger(__name__)

JUNO_RAW_MB_S = 60.0  # the detector's raw data rate (the paper: 60 MB/s, 5.2 TB a day)
SCALE = 100  # the default rate is JUNO's divided by this: what one small shared machine writes at ease
DEFAULT_MB_S = JUNO_RAW_MB_S / SCALE  # 0.6 MB/s
DEFAULT_SIZE = 100_000  # bytes: with the default rate, 6 files a second
SECONDS_PER_DAY = 86400
CHUNK = 1 << 20  # content is made, checksummed and written in pieces of this size

FaultKind = Literal["malformed", "wrong_checksum", "missing_file"]
EXCLUSIVE_FAULTS: tuple[FaultKind, ...] = ("malformed", "wrong_checksum", "missing_file")
MALFORMED_KINDS: tuple[str, ...] = (
    "not_json", "missing_field", "wrong_type", "negative_size", "bad_checksum_format", "path_traversal",
    "unknown_version",
)
MAX_REPEAT_DELAY = 10  # a duplicate goes out again after 1..this many further messages


class SimError(ServiceError):
    """The simulation could not finish: a file could not be written or messages could not be published."""


class PlanError(ConfigError, ValueError):  # ValueError: raised in SimPlan's pydantic validators
    """A plan that does not hold together; `field` names the setting to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Faults(BaseModel):
    """Fractions of the files that get each fault."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duplicate: float = Field(default=0.0, ge=0, le=1, description="Messages published a second time.")
    malformed: float = Field(default=0.0, ge=0, le=1, description="Messages that are not valid FileArrived.")
    wrong_checksum: float = Field(default=0.0, ge=0, le=1, description="adler32 in the message is not the file's.")
    missing_file: float = Field(default=0.0, ge=0, le=1, description="Messages for files never written.")

    @model_validator(mode="after")
    def _disjoint(self) -> Faults:
        if self.malformed + self.wrong_checksum + self.missing_file > 1:
            raise PlanError("faults", "malformed + wrong_checksum + missing_file exceed 1: a file has at most one "
                            "of them")
        return self

    def counts(self, files: int) -> dict[str, int]:
        """How many files get each fault."""
        return {name: round(getattr(self, name) * files) for name in ("duplicate", *EXCLUSIVE_FAULTS)}


class SimPlan(BaseModel):
    """What to simulate: which files SPADE delivers, when (simulated), how fast (real), and what goes wrong."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    files: int = Field(ge=1, le=10_000_000, description="Files to deliver.")
    days: int = Field(default=1, ge=1, le=3660, description="Receiving times spread evenly over this many days.")
    start: dt.date = Field(description="The first receiving day (UTC).")
    size: int = Field(default=DEFAULT_SIZE, ge=1, le=2**40, description="Bytes per file.")
    rate: float | None = Field(default=None, ge=0, description="Messages per second; 0: as fast as possible.")
    mbps: float | None = Field(default=None, gt=0, description="MB per second of files (instead of rate).")
    streams: tuple[str, ...] = Field(default=("physics",), min_length=1, description="Streams, files in turn.")
    first_run: int = Field(default=1, ge=0, le=999999, description="Run number of the first files.")
    files_per_run: int = Field(default=100, ge=1, le=99999, description="Files of one stream in one run.")
    seed: int = Field(default=0, description="Seed of every random choice: same plan, same deliveries.")
    faults: Faults = Field(default_factory=Faults)
    location_prefix: str = Field(description="IHEP_DISK's URL prefix; a file's location = prefix + its path.")
    content: bool = Field(default=True, description="False: no bytes exist (--no-files); the adler32 is random.")

    @field_validator("streams")
    @classmethod
    def _streams(cls, streams: tuple[str, ...]) -> tuple[str, ...]:
        for stream in streams:
            if not re.fullmatch(naming.STREAM_PATTERN, stream):
                raise ValueError(f"stream {stream!r}: lower-case letters and digits, starting with a letter, "
                                 "at most 16")
        if len(set(streams)) != len(streams):
            raise ValueError("a stream is given twice")
        return streams

    @field_validator("location_prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        scheme, sep, rest = prefix.partition("://")
        if scheme not in ("davs", "https", "root") or not sep or not rest.split("/", 1)[0]:
            raise ValueError(f"{prefix!r} is not a davs://, https:// or root:// URL with a host")
        return prefix if prefix.endswith("/") else prefix + "/"

    @model_validator(mode="after")
    def _fits(self) -> SimPlan:
        if self.rate is not None and self.mbps is not None:
            raise PlanError("mbps", "give a rate in files per second or in MB per second, not both")
        last_day = self.start + dt.timedelta(days=self.days - 1)
        if self.start.year < 2000 or last_day.year > 2099:
            raise PlanError("start", f"receiving days {self.start}..{last_day} leave 2000-2099, the years names "
                            "can hold")
        per_stream = -(-self.files // len(self.streams))
        last_run = self.first_run + (per_stream - 1) // self.files_per_run
        if last_run > 999999:
            raise PlanError("first_run", f"the runs would go up to {last_run}, past 999999: lower the first run or "
                            "the files")
        return self

    @property
    def files_per_second(self) -> float | None:
        """The publishing rate (None: unlimited): the rate given, or MB/s over the file size, or JUNO's scaled."""
        if self.rate is not None:
            return self.rate or None
        return (self.mbps or DEFAULT_MB_S) * 1e6 / self.size


@dataclass(frozen=True)
class Delivery:
    """One raw file as SPADE delivers it: what is written at IHEP_DISK and the message announcing it."""

    index: int
    spade_id: str
    name: str
    run: int
    stream: str
    seq: int
    received_at: dt.datetime
    size: int
    location: str
    content_seed: int | None  # None: no content exists (--no-files)
    adler32: str  # of the content: what the SE reports
    fault: FaultKind | None
    malformed: str | None  # one of MALFORMED_KINDS when fault == "malformed"
    repeat_after: int | None  # a duplicate: published again after this many further messages
    message: bytes = field(repr=False)

    @property
    def written(self) -> bool:
        """Whether the simulator puts this file's bytes at the SE."""
        return self.content_seed is not None and self.fault != "missing_file"

    @property
    def block(self) -> str:
        return naming.block_name(self.received_at.date(), self.stream)

    @property
    def key(self) -> bytes:
        return self.name.encode()


def content_chunks(seed: int, size: int) -> Iterator[bytes]:
    """A file's random content, piece by piece; the same seed and size give the same bytes."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test content, not a secret
    left = size
    while left > 0:
        piece = min(CHUNK, left)
        yield rng.randbytes(piece)
        left -= piece


def content_adler32(seed: int, size: int) -> str:
    value = 1
    for chunk in content_chunks(seed, size):
        value = zlib.adler32(chunk, value)
    return f"{value & 0xFFFFFFFF:08x}"


def deliveries(plan: SimPlan) -> Iterator[Delivery]:
    """Every delivery of the plan, in receiving order."""
    rng = random.Random(plan.seed)  # noqa: S311 - reproducible simulation, not a secret
    n = plan.files
    tag = f"{rng.getrandbits(32):08x}"
    counts = plan.faults.counts(n)
    chosen = rng.sample(range(n), sum(counts[f] for f in EXCLUSIVE_FAULTS))
    fault_of: dict[int, FaultKind] = {}
    for kind in EXCLUSIVE_FAULTS:
        fault_of.update(dict.fromkeys(chosen[: counts[kind]], kind))
        chosen = chosen[counts[kind]:]
    turn = rng.randrange(len(MALFORMED_KINDS))
    malformed_of = {i: MALFORMED_KINDS[(turn + j) % len(MALFORMED_KINDS)]
                    for j, i in enumerate(sorted(i for i, f in fault_of.items() if f == "malformed"))}
    duplicates = set(rng.sample(range(n), counts["duplicate"]))
    start = dt.datetime.combine(plan.start, dt.time(), tzinfo=dt.UTC)
    step_ms = plan.days * SECONDS_PER_DAY * 1000 / n
    streams = len(plan.streams)
    for i in range(n):
        stream = plan.streams[i % streams]
        k = i // streams
        run, seq = plan.first_run + k // plan.files_per_run, k % plan.files_per_run + 1
        received_at = start + dt.timedelta(milliseconds=int(i * step_ms))
        name = naming.raw_file_name(run, stream, seq, received_at.date())
        content_seed = rng.getrandbits(64) if plan.content else None
        adler32 = content_adler32(content_seed, plan.size) if content_seed is not None \
            else f"{rng.getrandbits(32):08x}"
        fault = fault_of.get(i)
        announced = f"{int(adler32, 16) ^ rng.randrange(1, 2**32):08x}" if fault == "wrong_checksum" else adler32
        fields: dict[str, Any] = {
            "version": 1, "spade_id": f"sim.{tag}.{name}", "name": name, "size": plan.size, "adler32": announced,
            "rse": "IHEP_DISK", "location": plan.location_prefix + path_for(RAW_SCOPE, name), "run": run,
            "stream": stream, "received_at": received_at,
        }
        # the first message is validated in full; the rest only differ in values already checked (name, times)
        arrived = FileArrived.model_validate(fields) if i == 0 else FileArrived.model_construct(**fields)
        broken = malformed_of.get(i)
        yield Delivery(
            index=i, spade_id=arrived.spade_id, name=name, run=run, stream=stream, seq=seq, received_at=received_at,
            size=plan.size, location=arrived.location, content_seed=content_seed, adler32=adler32, fault=fault,
            malformed=broken, repeat_after=rng.randint(1, MAX_REPEAT_DELAY) if i in duplicates else None,
            message=arrived.to_json() if broken is None else malformed_message(broken, arrived),
        )


def malformed_message(kind: str, arrived: FileArrived) -> bytes:
    """A broken version of a good message, broken in the way `kind` names."""
    good = json.loads(arrived.to_json())
    broken = dict(good)
    if kind == "not_json":
        text = json.dumps(good).encode()
        return text[: len(text) // 2]  # cut off in the middle
    if kind == "missing_field":
        del broken["adler32"]
    elif kind == "wrong_type":
        broken["size"] = f"{arrived.size} bytes"
    elif kind == "negative_size":
        broken["size"] = -arrived.size
    elif kind == "bad_checksum_format":
        broken["adler32"] = f"ADLER32:{arrived.adler32.upper()}"
    elif kind == "path_traversal":
        broken["name"] = f"../../../etc/{arrived.name}"
        prefix = arrived.location.removesuffix(path_for(RAW_SCOPE, arrived.name))
        broken["location"] = f"{prefix}raw/../../../etc/{arrived.name}"
    elif kind == "unknown_version":
        broken["version"] = SCHEMA_VERSION + 1
    else:
        raise ValueError(f"unknown kind of malformed message {kind!r} (kinds: {', '.join(MALFORMED_KINDS)})")
    return json.dumps(broken).encode()


class Pacer:
    """Spaces calls to `wait` at `rate` per second (None: no waiting). After a stall it catches up by at most
    one second's worth, never with an unbounded burst. `sleep` may be an Event's wait, to cut a pause short."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._clock, self._sleep = clock, sleep
        self._due: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self._clock()
        due = now if self._due is None else max(self._due, now - 1.0)
        if due > now:
            self._sleep(due - now)
        self._due = due + self.interval


class Publisher:
    """Sends messages to one topic through a Kafka producer, paced; failures are counted, not raised, so
    that one bad send does not stop the rest; `close` flushes and reports them."""

    def __init__(self, producer: Any, topic: str, pacer: Pacer) -> None:
        self.producer, self.topic, self.pacer = producer, topic, pacer
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, key: bytes, value: bytes) -> None:
        self.pacer.wait()
        future = self.producer.send(self.topic, key=key, value=value)
        future.add_errback(self._failed, key)

    def _failed(self, key: bytes, exc: BaseException) -> None:
        with self._lock:
            self.failures.append(f"{key.decode(errors='replace')}: {exc}")

    def close(self, timeout: float = 60.0) -> None:
        """Flush everything sent, close the producer, and raise SimError if any send failed."""
        try:
            self.producer.flush(timeout=timeout)
        finally:
            self.producer.close(timeout=timeout)
        if self.failures:
            raise SimError(f"{len(self.failures)} message(s) not published to {self.topic}, first: "
                           f"{self.failures[0]}")


class Gfal2Writer:
    """Puts a delivery's bytes at its location with gfal2 (davs:// or root://): the content goes to a local
    temporary file, then up with the SE's adler32 checked against ours. A file already there with the same
    size and adler32 counts as written (replaying a plan is safe); with other content it is an error.
    One gfal2 context per thread keeps each thread's HTTPS session to the SE open. `token` gives the bearer
    token of each write (SPADE's own identity, the raw-data service: juno_dcs.tokens.storage), asked again for
    every file so that a long simulation outlives a token."""

    def __init__(self, timeout: int = 300, attempts: int = 6, tmp_dir: str | None = None,
                 token: TokenGetter | None = None) -> None:
        self.timeout, self.attempts, self.tmp_dir = timeout, attempts, tmp_dir
        self.token = token
        self._local = threading.local()

    def _context(self) -> tuple[Any, str | None]:
        import gfal2  # Debian's binding, linked into the venv by `make setup`

        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = self._local.ctx = gfal2.creat_context()
        token = self.token() if self.token else None
        authorize(ctx, token)  # SPADE writes with its own identity, never one gfal2 finds in the environment
        return ctx, token

    def __call__(self, delivery: Delivery) -> int:
        """Write one file; returns the bytes written (0 when it was already there)."""
        import gfal2

        if delivery.content_seed is None:
            raise ValueError(f"{delivery.name}: no content to write (planned without files)")
        ctx, token = self._context()
        url = with_token(delivery.location, token)
        with tempfile.NamedTemporaryFile(dir=self.tmp_dir, prefix="spade-sim-") as handle:
            for chunk in content_chunks(delivery.content_seed, delivery.size):
                handle.write(chunk)
            handle.flush()
            for attempt in range(1, self.attempts + 1):
                params = ctx.transfer_parameters()
                params.overwrite = False
                params.create_parent = True
                params.timeout = self.timeout
                try:
                    ctx.filecopy(params, f"file://{handle.name}", url)
                    # the SE's adler32 against ours, asked by gfal2 itself: XRootD's copy would ask without the
                    # URL's token (XrdCl drops the CGI of its checksum query) and be refused
                    written = str(ctx.checksum(url, "adler32")).lower().zfill(8)
                    if written != delivery.adler32:
                        raise gfal2.GError(f"adler32 at the SE is {written}, ours {delivery.adler32}", errno.EIO)
                    return delivery.size
                except gfal2.GError as exc:
                    if exc.code == errno.EEXIST:
                        return self._existing(ctx, delivery, url)
                    why = redact(exc.message.strip())
                    if exc.code in (errno.EACCES, errno.EPERM):  # refused: trying again changes nothing
                        raise SimError(f"the SE refused to let SPADE write {delivery.location}: [{exc.code}] "
                                       f"{why}") from None
                    self._remove(ctx, url)
                    if attempt == self.attempts:
                        raise SimError(f"could not write {delivery.location} ({attempt} attempts): "
                                       f"[{exc.code}] {why}") from None
                    logger.warning("writing %s failed (attempt %d): %s", delivery.location, attempt, why)
                    time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))  # 0.5, 1, 2, 4, 8 s: outlasts an SE restart
        raise AssertionError("unreachable")  # pragma: no cover

    def _existing(self, ctx: Any, delivery: Delivery, url: str) -> int:
        size = int(ctx.stat(url).st_size)
        checksum = str(ctx.checksum(url, "adler32")).lower()
        if size != delivery.size or checksum != delivery.adler32:
            raise SimError(f"{delivery.location} exists with other content ({size} bytes, adler32 {checksum}; "
                           f"this plan's: {delivery.size}, {delivery.adler32}): choose another run, stream or "
                           "start date")
        logger.info("%s is already there with the same content", delivery.location)
        return 0

    @staticmethod
    def _remove(ctx: Any, url: str) -> None:
        import gfal2

        try:
            ctx.unlink(url)
        except gfal2.GError as exc:
            if exc.code != errno.ENOENT:
                logger.warning("could not remove the partial file %s: %s", redact(url), redact(exc.message))


@dataclass
class Summary:
    """What a simulation did."""

    topic: str
    delivered: int = 0  # files whose (first) message went out
    published: int = 0
    files_written: int = 0
    files_present: int = 0  # already at the SE with the same content (a replayed plan)
    bytes_written: int = 0
    by_fault: Counter[str] = field(default_factory=Counter)
    malformed_kinds: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    stopped: bool = False  # ended early on request
    first_received_at: dt.datetime | None = None
    last_received_at: dt.datetime | None = None
    days_streams: set[tuple[dt.date, str]] = field(default_factory=set)  # of the valid messages: their blocks

    def count(self, delivery: Delivery) -> None:
        self.delivered += 1
        if delivery.fault:
            self.by_fault[delivery.fault] += 1
        if delivery.malformed:
            self.malformed_kinds[delivery.malformed] += 1
        else:
            self.days_streams.add((delivery.received_at.date(), delivery.stream))
        if self.first_received_at is None:
            self.first_received_at = delivery.received_at
        self.last_received_at = delivery.received_at

    def as_dict(self) -> dict[str, Any]:
        elapsed = max(self.elapsed_s, 1e-9)
        return {
            "topic": self.topic,
            "delivered": self.delivered,
            "stopped": self.stopped,
            "published": self.published,
            "files_written": self.files_written,
            "files_present": self.files_present,
            "bytes": self.bytes_written,
            "by_fault": {name: self.by_fault[name] for name in ("duplicate", *EXCLUSIVE_FAULTS)},
            "malformed_kinds": dict(sorted(self.malformed_kinds.items())),
            "elapsed_s": round(self.elapsed_s, 3),
            "messages_per_s": round(self.published / elapsed, 1),
            "mb_per_s": round(self.bytes_written / elapsed / 1e6, 3),
            "first_received_at": _iso(self.first_received_at),
            "last_received_at": _iso(self.last_received_at),
            "blocks": sorted(naming.block_name(day, stream) for day, stream in self.days_streams),
        }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def simulate(plan: SimPlan, publish: Callable[[bytes, bytes], None], *, topic: str,
             write: Callable[[Delivery], int] | None = None, threads: int = 4,
             progress: Callable[[Delivery], None] | None = None, stop: threading.Event | None = None,
             clock: Callable[[], float] = time.monotonic) -> Summary:
    """Deliver the plan: write each file (when `write` is given and the file is to exist) with up to `threads`
    writes at once, then publish its message, in plan order; duplicates go out again a few messages later.
    A write error stops the simulation (SimError); what was published before stays published. Setting `stop`
    ends it early but cleanly: the files being written are finished and announced, nothing more is started."""
    summary = Summary(topic=topic)
    started = clock()
    repeats: list[tuple[int, int, Delivery]] = []  # (due after this many messages, index, delivery)

    def send(delivery: Delivery) -> None:
        publish(delivery.key, delivery.message)
        summary.published += 1
        if delivery.repeat_after is not None:
            heapq.heappush(repeats, (summary.published + delivery.repeat_after, delivery.index, delivery))
        while repeats and repeats[0][0] <= summary.published:
            _, _, again = heapq.heappop(repeats)
            publish(again.key, again.message)
            summary.published += 1
            summary.by_fault["duplicate"] += 1

    def finish(delivery: Delivery, written: Future[int] | None) -> None:
        if written is not None:
            size = written.result()
            summary.bytes_written += size
            if size:
                summary.files_written += 1
            else:
                summary.files_present += 1
        summary.count(delivery)
        send(delivery)
        if progress is not None:
            progress(delivery)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="spade-write") as pool:
        window: deque[tuple[Delivery, Future[int] | None]] = deque()
        try:
            for delivery in deliveries(plan):
                if stop is not None and stop.is_set():
                    summary.stopped = True
                    break
                future = pool.submit(write, delivery) if write is not None and delivery.written else None
                window.append((delivery, future))
                if len(window) > 2 * threads:
                    finish(*window.popleft())
            while window:
                finish(*window.popleft())
        except BaseException:
            for _, future in window:
                if future is not None:
                    future.cancel()
            raise
    for _, _, again in sorted(repeats):
        publish(again.key, again.message)
        summary.published += 1
        summary.by_fault["duplicate"] += 1
    summary.elapsed_s = clock() - started
    return summary

