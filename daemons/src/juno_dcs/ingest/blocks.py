"""Daily blocks as one ingestor instance sees them: which exist, which are open, when one is due to close.

A block is raw:block.<YYYYMMDD>.<stream>, one Rucio dataset per receiving day (UTC) and stream. It closes once its
day has ended plus the grace (files received late by SPADE still join it) and nothing has been attached to it for
the quiet period. A file for a block that is already closed reopens it (late data is never dropped); it closes
again by the same rule. Pure logic: the Rucio calls are in catalog.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from juno_rucio_policy import naming


@dataclass
class Block:
    name: str
    day: dt.date
    stream: str
    open: bool = True
    last_attach: float = 0.0  # wall clock (epoch seconds) of this instance's last attachment; 0 = never
    rules_done: bool = False  # every rule of the policy exists (the tape rules wait for the close)
    dirty: bool = False  # attachments since the metadata was last written
    run_first: int | None = None
    run_last: int | None = None
    runs_seen: set[int] = field(default_factory=set, repr=False)

    @classmethod
    def of(cls, name: str) -> Block:
        fields = naming.parse("raw", name, collection=True).fields
        day = dt.date(int(fields["date"][:4]), int(fields["date"][4:6]), int(fields["date"][6:]))
        return cls(name=name, day=day, stream=fields["stream"])

    def day_end(self) -> float:
        """The end of the block's day, UTC, in epoch seconds."""
        end = dt.datetime.combine(self.day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return end.timestamp()

    def attached(self, runs: list[int], now: float) -> None:
        self.last_attach = now
        self.dirty = True
        for run in runs:
            self.run_first = run if self.run_first is None else min(self.run_first, run)
            self.run_last = run if self.run_last is None else max(self.run_last, run)

    def due(self, now: float, grace: float, quiet: float) -> bool:
        """Whether to close it now."""
        return self.open and now >= self.day_end() + grace and now - self.last_attach >= quiet

    def reason_not_due(self, now: float, grace: float, quiet: float) -> str | None:
        if not self.open:
            return "closed"
        if now < self.day_end() + grace:
            return f"its day ends plus grace in {self.day_end() + grace - now:.0f} s"
        if now - self.last_attach < quiet:
            return f"a file was attached {now - self.last_attach:.0f} s ago (quiet period {quiet:.0f} s)"
        return None


def metadata(block: Block) -> dict[str, object]:
    """The block's JSON metadata in Rucio (the file count and bytes are Rucio's own length and bytes)."""
    meta: dict[str, object] = {"block_date": block.day.isoformat(), "block_stream": block.stream,
                               "juno_ingest": True}
    if block.run_first is not None:
        meta["run_first"] = block.run_first
        meta["run_last"] = block.run_last
    return meta
