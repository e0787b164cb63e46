"""The ingestor's writes to Rucio, each idempotent: a replayed message changes nothing.

Files are registered and attached in one call per batch, Rucio's add_files_to_datasets with the RSE (replicas are
created where missing, existing ones kept) and ignore_duplicate (an existing attachment is skipped, and the block's
length and bytes count it once).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from juno_dcs.ingest.blocks import Block, metadata
from juno_dcs.ingest.message import FileArrived

logger = logging.getLogger(__name__)
Client = Any  # rucio.client.Client


@dataclass(frozen=True)
class Mismatch:
    """A file Rucio already knows with another size or checksum: it is quarantined, not registered."""

    message: FileArrived
    reason: str


class Catalog:
    def __init__(self, client: Client, scope: str, rse: str, file_metadata: bool = False) -> None:
        self.client = client
        self.scope = scope
        self.rse = rse
        self.file_metadata = file_metadata

    def ensure_block(self, block: Block) -> bool:
        """Create the block's dataset unless it exists; True if created. Learns whether it is open."""
        from rucio.common.exception import DataIdentifierAlreadyExists

        try:
            self.client.add_dataset(self.scope, block.name, meta={"stream_name": block.stream})
        except DataIdentifierAlreadyExists:
            block.open = self.is_open(block.name)
            return False
        self.client.set_metadata_bulk(self.scope, block.name, metadata(block))
        block.open = True
        return True

    def is_open(self, name: str) -> bool:
        return bool(self.client.get_did(self.scope, name).get("open", False))

    def register(self, by_block: Mapping[str, Sequence[FileArrived]]) -> list[Mismatch]:
        """Register and attach every file; the mismatched ones are left out and returned."""
        from rucio.common.exception import FileConsistencyMismatch

        try:
            self._add(by_block)
            return []
        except FileConsistencyMismatch:
            pass
        mismatches: list[Mismatch] = []
        for block, files in by_block.items():  # find the culprits one by one (rare: a resent, changed file)
            for message in files:
                try:
                    self._add({block: [message]})
                except FileConsistencyMismatch as exc:
                    mismatches.append(Mismatch(message, f"Rucio knows {self.scope}:{message.name} differently: "
                                                        f"{_first_line(exc)}"))
        return mismatches

    def _add(self, by_block: Mapping[str, Sequence[FileArrived]]) -> None:
        attachments = [{
            "scope": self.scope, "name": block, "rse": self.rse,
            "dids": [self._did(m) for m in files],
        } for block, files in by_block.items() if files]
        if attachments:
            self.client.add_files_to_datasets(attachments, ignore_duplicate=True)

    def _did(self, m: FileArrived) -> dict[str, Any]:
        did: dict[str, Any] = {"scope": self.scope, "name": m.name, "bytes": m.size, "adler32": m.adler32}
        if self.file_metadata:
            did["meta"] = {"run_number": m.run, "stream_name": m.stream}
        return did

    def closed_among(self, names: Sequence[str]) -> list[str]:
        return [name for name in names if not self.is_open(name)]

    def reopen(self, name: str) -> None:
        self.client.set_status(self.scope, name, open=True)
        logger.warning("reopened closed block %s:%s for a late file", self.scope, name)

    def close(self, block: Block) -> None:
        from rucio.common.exception import UnsupportedOperation

        self.write_metadata(block)
        with contextlib.suppress(UnsupportedOperation):  # already closed by another instance
            self.client.close(self.scope, block.name)
        block.open = False

    def write_metadata(self, block: Block) -> None:
        """Merge this instance's run range with the one in Rucio (another instance may have widened it)."""
        current = self.client.get_metadata(self.scope, block.name, plugin="JSON")
        for key, pick in (("run_first", min), ("run_last", max)):
            if isinstance(current.get(key), int):
                mine = getattr(block, key)
                setattr(block, key, current[key] if mine is None else pick(mine, current[key]))
        self.client.set_metadata_bulk(self.scope, block.name, metadata(block))
        block.dirty = False

    def open_blocks_created_since(self, days: int) -> list[str]:
        """Blocks made by an ingestor (created within `days`) that are still open: to adopt at start."""
        import datetime as dt

        since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        names = self.client.list_dids(self.scope, {"name": "block.*", "created_after": since}, did_type="dataset")
        found = []
        for name in names:
            if self.is_open(name) and self.client.get_metadata(self.scope, name, plugin="JSON").get("juno_ingest"):
                found.append(str(name))
        return found


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
