"""The collector: every `sample_s` it samples what only exists as a current value (running jobs per site from
the dispatcher's queues, the transfer links' snapshot, the ingestors' lag) and re-buckets the recently finished
transfers into throughput per channel, into schema `dashboard`.

Two collectors at once are safe: a sample's primary key is (series, key, slot), and a replayed write replaces
the value of its slot (the slot is the sample time rounded down to `sample_s`; a throughput bucket's value is
recomputed from the same finished transfers). Collectors of the same `sample_s` share the work by heartbeats
(`heartbeat_name`): each samples the sources whose name hashes to its index (`Share.takes`); collectors of other
periods write other slots and are a group of their own. The runner (juno_dcs.daemon) calls `run_once` every
`sample_s`."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from juno_dcs.dashboard import aggregate, db
from juno_dcs.dashboard.config import DashboardConfig
from juno_dcs.dashboard.sources import DispatcherApi, RucioSource, SourceError, TransferApi, bearer_auth
from juno_dcs.heartbeat import ALL, Share

logger = logging.getLogger(__name__)


@dataclass
class Cycle:
    written: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"written": self.written, "errors": self.errors}


def read_metrics(directory: Path | None) -> list[dict[str, Any]]:
    if directory is None:
        return []
    from juno_dcs.ingest.metrics import read_all

    return read_all(directory, live_only=True)


class Collector:
    def __init__(self, config: DashboardConfig, rucio: RucioSource) -> None:
        self.config = config
        self.rucio = rucio
        self.transfers = TransferApi(config.transfer_url, config.http_timeout_s,
                                     bearer_auth(config, config.transfer_audience))
        self.dispatcher = DispatcherApi(config.dispatcher_url, config.http_timeout_s,
                                        bearer_auth(config, config.dispatcher_audience))
        self.stop = threading.Event()
        self.last: Cycle | None = None
        self.last_at: float | None = None
        self.blocks_at = 0.0  # when the blocks' summary was last refreshed to the end

    @property
    def heartbeat_name(self) -> str:
        """The collectors that share the work: those of the same sampling period."""
        return f"juno-dashboard collect/{self.config.sample_s:g}s"

    def run_once(self, now: float | None = None, share: Share = ALL) -> Cycle:
        """One sample of every source of this collector's share; a source that fails is reported and does not stop
        the others."""
        now = time.time() if now is None else now
        slot = aggregate.slot_of(now, self.config.sample_s)
        cycle = Cycle()
        conn = db.connect(self.config.database_url)
        try:
            db.check_schema(conn)
            for name, take in (("running", self._jobs), ("links", self._links), ("throughput", self._throughput),
                               ("ingest_lag", self._ingest)):
                if not share.takes(name):
                    continue
                try:
                    cycle.written[name] = db.upsert(conn, take(slot, now))
                except SourceError as exc:
                    cycle.errors[name] = str(exc)
                    logger.warning("collector: %s: %s", name, exc)
            if share.takes("blocks") and now - self.blocks_at >= self.config.blocks_refresh_s:
                try:
                    cycle.written["blocks"] = self._blocks(conn, now)
                except SourceError as exc:
                    cycle.errors["blocks"] = str(exc)
                    logger.warning("collector: blocks: %s", exc)
            db.prune(conn, now - self.config.retention_h * 3600)
        finally:
            conn.close()
        self.last, self.last_at = cycle, now
        return cycle

    def _jobs(self, slot: int, now: float) -> list[aggregate.Sample]:
        return aggregate.job_samples(aggregate.running_per_site(self.dispatcher.queues()), slot)

    def _links(self, slot: int, now: float) -> list[aggregate.Sample]:
        sites = self.rucio.storage_elements()
        out = []
        for link in self.transfers.snapshot(self.config.sample_s * 3):
            ch = aggregate.channel(str(link["source_se"]), str(link["dest_se"]), sites)
            out += [aggregate.Sample("link_active", ch, slot, float(link.get("active") or 0)),
                    aggregate.Sample("link_queued", ch, slot, float(link.get("queued") or 0))]
        return _summed(out)

    def _throughput(self, slot: int, now: float) -> list[aggregate.Sample]:
        files = self.transfers.recent_files(self.config.lookback_s)
        since = aggregate.slot_of(now - self.config.lookback_s, self.config.bucket_s) + self.config.bucket_s
        return aggregate.throughput_samples(files, self.rucio.storage_elements(), self.config.bucket_s, since)

    def _ingest(self, slot: int, now: float) -> list[aggregate.Sample]:
        return aggregate.lag_samples(read_metrics(self.config.ingest_metrics_dir), slot)

    def _blocks(self, conn: db.Conn, now: float) -> int:
        """The raw blocks' summary: the blocks that changed, at most `blocks_budget`; when more are due, the next
        cycle goes on with them rather than waiting `blocks_refresh_s`."""
        from juno_dcs.ingest import summary

        with self.rucio.client() as client:
            result = summary.refresh(client, conn, self.rucio.topology, self.config.raw_scope,
                                     budget=self.config.blocks_budget, recheck_s=self.config.blocks_recheck_s)
        if result.refreshed or result.removed:
            logger.info("collector: blocks' summary: %s", result.as_json())
        self.blocks_at = now if result.left == 0 else 0.0
        return len(result.refreshed)

    def run(self, once: bool = False) -> Cycle:
        """Cycle every `sample_s` until `stop` is set (juno_dcs.daemon, with heartbeats); once: one cycle, errors
        raised. Installs no signal handler: the caller sets `stop`."""
        from juno_dcs.daemon import run_daemon
        from juno_dcs.heartbeat import Heartbeats, Instance, per_beat_connections, timeout_for

        name = self.heartbeat_name
        beats = Heartbeats(name, per_beat_connections(self.config.database_url), timeout_for(self.config.sample_s),
                           instance=Instance.here(name, threading.current_thread().name))

        def one(share: Share) -> bool:
            self.run_once(share=share)
            return True  # a sample every sample_s

        run_daemon(name, one, stop=self.stop, once=once, sleep_time=self.config.sample_s, heartbeats=beats)
        return self.last or Cycle()


def _summed(samples: list[aggregate.Sample]) -> list[aggregate.Sample]:
    """Several links of one channel (disk and tape of a site): one sample, their sum."""
    sums: dict[tuple[str, str, int], float] = {}
    for s in samples:
        sums[(s.series, s.key, s.slot)] = sums.get((s.series, s.key, s.slot), 0.0) + s.value
    return [aggregate.Sample(series, key, slot, v) for (series, key, slot), v in sums.items()]
