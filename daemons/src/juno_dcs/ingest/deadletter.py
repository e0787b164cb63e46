"""The dead-letter topic: every message the ingestor does not register goes there with the reason.

Each dead letter is a JSON object: kind (rejected: the message is not valid; quarantined: valid but the file is
missing or differs at the SE or in Rucio), reason, field, where it came from (topic, partition, offset, key) and
the original value (as text, cut at 4 KiB, with its full length). They are flushed before the offsets of their
batch are committed, so none is lost.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

ORIGINAL_LIMIT = 4096


@dataclass(frozen=True)
class Source:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class DeadLetter:
    kind: Literal["rejected", "quarantined"]
    reason: str
    field: str | None
    source: Source

    def to_json(self, instance: str) -> bytes:
        value = self.source.value or b""
        body: dict[str, Any] = {
            "kind": self.kind,
            "reason": self.reason,
            "field": self.field,
            "topic": self.source.topic,
            "partition": self.source.partition,
            "offset": self.source.offset,
            "key": self.source.key.decode(errors="replace") if self.source.key is not None else None,
            "original": value[:ORIGINAL_LIMIT].decode(errors="replace"),
            "original_bytes": len(value),
            "at": dt.datetime.now(dt.UTC).isoformat(),
            "instance": instance,
        }
        return json.dumps(body).encode()
