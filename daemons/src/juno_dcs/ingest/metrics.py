"""What one ingestor instance has done and is doing, written as JSON for `juno-dcs raw status`, the probes and the
dashboard: counters since start, consumer lag per partition, latencies, and the state (running, or waiting for
Rucio or Kafka, with the last error)."""

from __future__ import annotations

import json
import os
import socket
import statistics
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Metrics:
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    started_at: float = field(default_factory=time.time)
    state: str = "starting"
    last_error: str | None = None
    consumed: int = 0
    registered: int = 0  # files in batches that Rucio accepted (replays included)
    duplicates_in_batch: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)  # by kind: rejected, quarantined
    reasons: Counter[str] = field(default_factory=Counter)  # by field (or "message")
    blocks_created: int = 0
    blocks_closed: int = 0
    blocks_reopened: int = 0
    batches: int = 0
    last_batch_s: float = 0.0
    lag: dict[str, int] = field(default_factory=dict)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))  # publish -> registered (s)

    def snapshot(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "instance": self.instance, "pid": os.getpid(), "started_at": self.started_at, "updated_at": time.time(),
            "state": self.state, "last_error": self.last_error,
            "consumed": self.consumed, "registered": self.registered,
            "duplicates_in_batch": self.duplicates_in_batch,
            "dead_lettered": dict(self.dead_lettered), "dead_letter_reasons": dict(self.reasons),
            "blocks_created": self.blocks_created, "blocks_closed": self.blocks_closed,
            "blocks_reopened": self.blocks_reopened, "batches": self.batches, "last_batch_s": self.last_batch_s,
            "lag": dict(self.lag), "lag_total": sum(self.lag.values()),
            "latency_p50_s": statistics.median(lat) if lat else None,
            "latency_p99_s": lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None,
        }

    def write(self, path: Path | None) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.snapshot(), indent=1))
        tmp.replace(path)


def read_all(directory: Path, live_only: bool = False) -> list[dict[str, Any]]:
    """Every instance's latest metrics in a directory; with `live_only`, not those of processes of this host
    that are gone (an instance killed with SIGKILL leaves its last file behind)."""
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if live_only and not _alive(entry):
            continue
        found.append(entry)
    return found


def _alive(entry: dict[str, Any]) -> bool:
    host, _, pid = str(entry.get("instance", "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's instance: only its own host can tell
    return Path(f"/proc/{pid}").exists()
