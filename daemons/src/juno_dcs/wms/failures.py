"""Failed jobs grouped by their reason, for the status commands (`jsub status`, `juno-prod status`).

    group(failures) -> [ErrorGroup(error_class, message, count, example)]   most frequent first

A reason is the job's class (juno_dcs.wms.classify) and its diagnostic with what differs from job to job taken
out (`normalise`: URLs, times, paths, DIDs, numbers and words with digits in them), so 120 sub-jobs that failed on
the same typo are one line. Plain functions on dicts as the dispatcher's API returns jobs: this runs on users' machines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE = 300
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE), "<url>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"(?<![\w.])(?:\.{0,2}/)?(?:[\w.+-]+/)+[\w.+-]*"), "<path>"),
    (re.compile(r"\b[\w.-]+:[\w.+-]+"), "<did>"),  # scope:name (a colon followed by a space is not one)
    (re.compile(r"(?<![\w<])[-+]?\d+(?:\.\d+)?(?![\w.])"), "N"),  # a number on its own
    (re.compile(r"(?<![\w<])(?=[\w.-]*\d)[\w.-]+"), "<id>"),  # a word with digits: a pilot, a file, a checksum
)


def normalise(message: str) -> str:
    """`message` with what differs between jobs of one failure replaced by placeholders, spaces collapsed."""
    out = " ".join(message.split())
    for pattern, placeholder in _PATTERNS:
        out = pattern.sub(placeholder, out)
    return out if len(out) <= MAX_MESSAGE else out[:MAX_MESSAGE - 3] + "..."


@dataclass(frozen=True)
class ErrorGroup:
    error_class: str
    message: str
    count: int
    example: dict[str, Any]  # the first job of the group, as given

    def as_json(self) -> dict[str, Any]:
        return {"error_class": self.error_class, "message": self.message, "count": self.count,
                "example": self.example}


def group(failures: Iterable[dict[str, Any]], diag_key: str = "error_diag") -> list[ErrorGroup]:
    """Group jobs ({"error_class", `diag_key`, ...}) by class and normalised diagnostic; most frequent first,
    then by class and message."""
    counts: dict[tuple[str, str], int] = {}
    examples: dict[tuple[str, str], dict[str, Any]] = {}
    for job in failures:
        key = (str(job.get("error_class") or "unknown"), normalise(str(job.get(diag_key) or "")))
        counts[key] = counts.get(key, 0) + 1
        examples.setdefault(key, job)
    ordered = sorted(counts, key=lambda k: (-counts[k], k))
    return [ErrorGroup(k[0], k[1], counts[k], examples[k]) for k in ordered]
