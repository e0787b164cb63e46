"""What a data challenge measures, as plain functions on samples (no I/O): sizes, throughput and phases.

A run is a list of `Tick`s, one per sampling instant, each with a `LinkSample` per link that has a rule: the
bytes present at the destination (partial files count), the rule's locks OK, the transfer service's active and
queued copies on the link. From them:

    link_phases(...)    when the link's first copy was submitted, its first and last byte arrived, its rule was OK
    stage_phases(...)   the same over the links that ran together (one stage in `parallel` mode, one per link in
                        `each` mode)
    rate_series(...)    throughput over time (MB/s) from cumulative bytes, over a sliding window
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from juno_dcs.errors import ConfigError

MB = 1_000_000
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in "100MB", "1GB", "1.5GiB", "512kB" or "4096" (decimal units kB, MB, GB, TB; binary KiB, MiB, GiB,
    TiB; case does not matter). A ConfigError says what is wrong."""
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"{text!r} is not a size: give a number and a unit, e.g. 100MB, 1GB, 512KiB")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ConfigError(f"{text!r}: unknown unit {unit!r} (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)")
    size = int(float(number) * factor)
    if size < 1:
        raise ConfigError(f"{text!r} is less than one byte")
    return size


def mb_per_s(nbytes: int, seconds: float) -> float:
    """Megabytes (10^6 bytes) per second; 0 for no time."""
    return nbytes / MB / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class LinkSample:
    """One link at one instant."""

    bytes: int  # at the destination, partly copied files included
    files_ok: int  # the rule's locks that are OK
    active: int  # the transfer service's copies running on the link
    queued: int  # submitted to the transfer service, not started


@dataclass(frozen=True)
class Tick:
    """One sampling instant: seconds since the run's clock started, and each sampled link."""

    t: float
    links: dict[str, LinkSample]


@dataclass(frozen=True)
class Phases:
    """Instants (seconds on the run's clock) in a link's or a stage's life; None when never seen."""

    created: float  # the rule was made
    submitted: float | None  # the first copy was at the transfer service (queued, running or done)
    first_byte: float | None  # bytes were first seen at the destination
    last_byte: float | None  # every byte was there
    ok: float | None  # the rule was OK

    def span(self, start: float | None, end: float | None) -> float:
        return max(0.0, end - start) if start is not None and end is not None else 0.0

    @property
    def submission_s(self) -> float:
        return self.span(self.created, self.submitted)

    @property
    def startup_s(self) -> float:
        return self.span(self.submitted, self.first_byte)

    @property
    def copying_s(self) -> float:
        return self.span(self.first_byte, self.last_byte)

    @property
    def finishing_s(self) -> float:
        return self.span(self.last_byte, self.ok)

    @property
    def total_s(self) -> float:
        return self.span(self.created, self.ok)


def link_phases(ticks: Sequence[Tick], link: str, created: float, ok: float | None, total_bytes: int) -> Phases:
    """The instants of one link from its samples. A copy counts as submitted when the service has it queued or
    running, or when its bytes or its lock show it went through between two samples."""
    submitted = first_byte = last_byte = None
    for tick in ticks:
        sample = tick.links.get(link)
        if sample is None or tick.t < created:
            continue
        if submitted is None and (sample.active or sample.queued or sample.bytes or sample.files_ok):
            submitted = tick.t
        if first_byte is None and sample.bytes > 0:
            first_byte = tick.t
        if last_byte is None and sample.bytes >= total_bytes:
            last_byte = tick.t
    if ok is not None:  # a link done between two samples: its last instants are at most the OK
        submitted, first_byte, last_byte = (ok if x is None else min(x, ok) for x in (submitted, first_byte,
                                                                                      last_byte))
    return Phases(created, submitted, first_byte, last_byte, ok)


def _earliest(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _latest(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) or not values else max(v for v in values if v is not None)


def stage_phases(links: Sequence[Phases]) -> Phases:
    """The phases of links that ran together: from the first rule made, the first submission and first byte
    of any of them, to the last byte and the last OK of all."""
    if not links:
        raise ValueError("a stage has at least one link")
    return Phases(created=min(p.created for p in links), submitted=_earliest([p.submitted for p in links]),
                  first_byte=_earliest([p.first_byte for p in links]), last_byte=_latest([p.last_byte for p in links]),
                  ok=_latest([p.ok for p in links]))


def rate_series(times: Sequence[float], cumulative: Sequence[int], window: float = 1.0) -> list[tuple[float, float]]:
    """(t, MB/s) at each sample after the first: the bytes added over the last `window` seconds (at least the
    previous sample) divided by the time they took."""
    if len(times) != len(cumulative):
        raise ValueError("times and byte counts differ in length")
    if window <= 0:
        raise ValueError("the window must be positive")
    series: list[tuple[float, float]] = []
    start = 0
    for i in range(1, len(times)):
        while start < i - 1 and times[i] - times[start + 1] >= window:
            start += 1
        elapsed = times[i] - times[start]
        series.append((times[i], mb_per_s(cumulative[i] - cumulative[start], elapsed)))
    return series


def peak_active(ticks: Sequence[Tick], link: str) -> int:
    """The most copies the transfer service ran at once on the link."""
    return max((tick.links[link].active for tick in ticks if link in tick.links), default=0)
