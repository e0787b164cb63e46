"""The Nagios plugin conventions shared by every probe."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Status(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Result:
    status: Status
    message: str
    perfdata: dict[str, str] = field(default_factory=dict)

    def line(self, name: str) -> str:
        perf = " ".join(f"{k}={v}" for k, v in self.perfdata.items())
        return f"{name.upper()} {self.status.name} - {self.message}" + (f" | {perf}" if perf else "")


def worst(*statuses: Status) -> Status:
    """The status that matters most: CRITICAL > WARNING > UNKNOWN > OK."""
    order = [Status.OK, Status.UNKNOWN, Status.WARNING, Status.CRITICAL]
    return max(statuses, key=order.index, default=Status.OK)


def threshold(value: float, warning: float, critical: float) -> Status:
    """Higher is worse: WARNING at or above `warning`, CRITICAL at or above `critical`."""
    if value >= critical:
        return Status.CRITICAL
    if value >= warning:
        return Status.WARNING
    return Status.OK
