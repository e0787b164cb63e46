"""The ingestor: Data Receiver -> File Register -> Block Creator -> Block Transfer, one Kafka consumer group.

One batch at a time: poll, validate every message (invalid ones become dead letters), check the files at the SE
(optional), create the blocks they belong to with the policy's rules, register and attach the files in Rucio,
flush the dead letters, and only then commit the offsets. A failure of Rucio or Kafka is retried with backoff on
the same batch: nothing is skipped and nothing committed early. A replayed message (after a crash, a rebalance or a
duplicate from SPADE) changes nothing in Rucio. Two instances with the same group split the partitions.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from juno_dcs.daemon import run_daemon
from juno_dcs.heartbeat import ALL, Heartbeats, Share
from juno_dcs.ingest import message as msg
from juno_dcs.ingest import verify
from juno_dcs.ingest.blocks import Block
from juno_dcs.ingest.catalog import Catalog
from juno_dcs.ingest.config import IngestConfig
from juno_dcs.ingest.deadletter import DeadLetter, Source
from juno_dcs.ingest.metrics import Metrics
from juno_dcs.tokens.storage import STORAGE_AUDIENCE, read_scope

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Stopped(Exception):
    """The stop event was set while waiting to retry."""


@dataclass(frozen=True)
class Accepted:
    message: msg.FileArrived
    source: Source
    timestamp_ms: int | None  # the broker's timestamp of the record (none on Kafka 0.9)


class Ingestor:
    def __init__(self, config: IngestConfig, new_client: Callable[[], Any], stop: threading.Event | None = None,
                 rules: Callable[[str], bool] | None = None) -> None:
        """`new_client()` makes a Rucio client of the raw-data account (one per registering thread); `rules(did)`
        puts the policy's rules on a block and says whether all of them exist (default: the policy files named
        in the config)."""
        self.config = config
        client = new_client()
        self.catalog = Catalog(client, config.rucio.scope, config.rucio.rse, config.file_metadata)
        self._catalogs = [self.catalog] + [Catalog(new_client(), config.rucio.scope, config.rucio.rse,
                                                        config.file_metadata)
                                           for _ in range(config.register_threads - 1)]
        self._pool = ThreadPoolExecutor(max_workers=config.register_threads, thread_name_prefix="register")
        self.stop = stop or threading.Event()
        self.metrics = Metrics()
        self.blocks: dict[str, Block] = {}
        self.rules = rules if rules is not None else (_policy_rules(config, client) if config.apply_rules else None)
        self._consumer: Any = None
        self._producer: Any = None
        self._last_housekeeping = 0.0
        self._se_base: str | None = None
        self._storage_tokens = config.storage_token.source() if config.storage_token else None
        self._metrics_path = (config.metrics_dir / f"{socket.gethostname()}-{os.getpid()}.json"
                              if config.metrics_dir else None)

    def _storage_token(self) -> str | None:
        """The token of the check at the SE (refreshed before it runs out), or None without one configured."""
        if self._storage_tokens is None:
            return None
        return self._storage_tokens.get(STORAGE_AUDIENCE, read_scope(f"/{self.config.rucio.scope}")).value

    # -- the loop (juno_dcs.daemon runs it: start, passes, close) ---------------------------------------------
    def run(self, once: bool = False, beats: Heartbeats | None = None, sleep_time: float = 0.0) -> Metrics:
        """Consume until stopped; with `once`, until a poll finds nothing new, then close due blocks and return.
        Instances of one group split the topic's partitions (Kafka's consumer group): the heartbeats' share is
        not used to split the work, the beats say which ingestors are alive."""
        try:
            self.start()
            run_daemon("juno-dcs ingest run", self.drain if once else self.run_once, stop=self.stop, once=once,
                       sleep_time=sleep_time, heartbeats=beats)
        except Stopped:
            logger.info("stopped while waiting; the uncommitted batch will be consumed again")
        finally:
            self.close()
        return self.metrics

    def start(self) -> None:
        """Connect to Kafka (waiting for it) and adopt the blocks that earlier instances left open."""
        self.metrics.state = "connecting to Kafka"
        self._consumer = self._retry("Kafka", lambda: self.config.kafka.consumer(
            self.config.topic, group_id=self.config.group_id, max_poll_records=self.config.batch_size))
        self._producer = self._retry("Kafka", lambda: self.config.kafka.producer(linger_ms=5))
        self._adopt_open_blocks()
        self.metrics.state = "running"

    def run_once(self, share: Share = ALL) -> bool:
        """One poll (it waits up to poll_ms for messages), its batch handled and committed, housekeeping; True
        (sleep) when the poll found nothing and every partition is consumed to its end."""
        try:
            batch = self._poll()
            caught_up = self._update_lag()
            self.housekeeping()
        except Stopped:
            return True
        return not batch and caught_up

    def drain(self, share: Share = ALL) -> bool:
        """Once-mode's pass: consume until a poll finds nothing new, then close the blocks that are due."""
        while not self.stop.is_set():
            batch = self._poll()
            if not batch and self._update_lag():
                break
        self.housekeeping(force=True)
        return True

    def _poll(self) -> list[Any]:
        records = self._retry("Kafka", lambda: self._consumer.poll(
            timeout_ms=self.config.poll_ms, max_records=self.config.batch_size))
        batch = [r for part in records.values() for r in part]
        if batch:
            self.handle(batch)
            self._commit()
        return batch

    def close(self) -> None:
        self.metrics.state = "stopped"
        self.metrics.write(self._metrics_path)
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
        if self._producer is not None:
            self._producer.close(timeout=10)
        self._pool.shutdown(wait=True)

    def handle(self, records: list[Any]) -> None:
        """One batch, from validation to durable registration and dead letters (but not the commit)."""
        started = time.monotonic()
        self.metrics.consumed += len(records)
        accepted, dead = self._receive(records)
        if self.config.verify_at_se and accepted:
            if self._se_base is None:
                self._se_base = self._retry("Rucio", lambda: verify.se_base(self.catalog.client,
                                                                            self.config.rucio.rse))
            base = self._se_base
            found = self._retry("the storage element", lambda: verify.problems(
                [a.message for a in accepted], base, self.config.verify_threads, self._storage_token()))
            dead += [DeadLetter("quarantined", found[a.message.name], "file", a.source)
                     for a in accepted if a.message.name in found]
            accepted = [a for a in accepted if a.message.name not in found]
        if accepted:
            for name in dict.fromkeys(a.message.block for a in accepted):
                self._retry("Rucio", lambda n=name: self._open_block(n))  # type: ignore[misc]
            mismatches = self._retry("Rucio", lambda: self._register(accepted))
            bad = {m.message.name: m.reason for m in mismatches}
            dead += [DeadLetter("quarantined", bad[a.message.name], "file", a.source)
                     for a in accepted if a.message.name in bad]
            registered = [a for a in accepted if a.message.name not in bad]
            self._registered(registered)
        self._send_dead(dead)
        self.metrics.batches += 1
        self.metrics.last_batch_s = time.monotonic() - started

    # -- Data Receiver ----------------------------------------------------------------------------------------
    def _receive(self, records: list[Any]) -> tuple[list[Accepted], list[DeadLetter]]:
        accepted: dict[str, Accepted] = {}
        dead: list[DeadLetter] = []
        for record in records:
            source = Source(record.topic, record.partition, record.offset, record.key, record.value)
            parsed = msg.parse(record.value, self.config.max_message_bytes)
            if isinstance(parsed, msg.Rejection):
                dead.append(DeadLetter("rejected", parsed.reason, parsed.field, source))
                continue
            earlier = accepted.get(parsed.name)
            if earlier is None:
                timestamp = record.timestamp if getattr(record, "timestamp", -1) not in (None, -1) else None
                accepted[parsed.name] = Accepted(parsed, source, timestamp)
            elif (earlier.message.size, earlier.message.adler32) == (parsed.size, parsed.adler32):
                self.metrics.duplicates_in_batch += 1  # SPADE said it twice: once is enough
            else:
                dead.append(DeadLetter("quarantined", f"conflicts with an earlier message for the same file "
                                       f"(offset {earlier.source.offset}: {earlier.message.size} bytes, adler32 "
                                       f"{earlier.message.adler32})", "name", source))
        return list(accepted.values()), dead

    # -- Block Creator and Block Transfer ---------------------------------------------------------------------
    def _open_block(self, name: str) -> None:
        block = self.blocks.get(name)
        if block is None:
            block = Block.of(name)
            if self.catalog.ensure_block(block):
                self.metrics.blocks_created += 1
                logger.info("opened block %s:%s", self.config.rucio.scope, name)
            self.blocks[name] = block
            self._apply_rules(block)
        if not block.open:
            self.catalog.reopen(name)
            block.open = True
            self.metrics.blocks_reopened += 1

    def _apply_rules(self, block: Block) -> None:
        if self.rules is None or block.rules_done:
            block.rules_done = True
            return
        try:
            block.rules_done = self.rules(f"{self.config.rucio.scope}:{block.name}")
        except Exception as exc:
            logger.error("rules of block %s not applied yet: %s", block.name, exc)

    # -- File Register ----------------------------------------------------------------------------------------
    def _register(self, accepted: list[Accepted]) -> list[Any]:
        from rucio.common.exception import DataIdentifierNotFound, UnsupportedOperation

        by_block: dict[str, list[msg.FileArrived]] = {}
        for a in accepted:
            by_block.setdefault(a.message.block, []).append(a.message)
        try:
            return self._register_parallel(by_block)
        except UnsupportedOperation:  # a block was closed meanwhile (by another instance): reopen and retry
            for name in self.catalog.closed_among(list(by_block)):
                self.blocks[name].open = False
                self._open_block(name)
            return self.catalog.register(by_block)
        except DataIdentifierNotFound:  # a block vanished (deleted by hand): make it again, then retry
            for name in by_block:
                self.blocks.pop(name, None)
                self._open_block(name)
            return self.catalog.register(by_block)

    def _register_parallel(self, by_block: dict[str, list[msg.FileArrived]]) -> list[Any]:
        """Split the batch into one share per registering thread (whole blocks where possible) and register the
        shares at once; every share must succeed (a failed one raises, and the whole batch is retried)."""
        total = sum(len(files) for files in by_block.values())
        threads = min(len(self._catalogs), max(1, total // 100))
        if threads == 1:
            return self.catalog.register(by_block)
        shares: list[dict[str, list[msg.FileArrived]]] = [{} for _ in range(threads)]
        for block, files in by_block.items():
            step = -(-len(files) // threads)
            for i in range(threads):
                part = files[i * step:(i + 1) * step]
                if part:
                    shares[i].setdefault(block, []).extend(part)
        futures = [self._pool.submit(catalog.register, share)
                   for catalog, share in zip(self._catalogs, shares, strict=False) if share]
        return [m for future in futures for m in future.result()]

    def _registered(self, registered: list[Accepted]) -> None:
        now = time.time()
        self.metrics.registered += len(registered)
        runs: dict[str, list[int]] = {}
        for a in registered:
            runs.setdefault(a.message.block, []).append(a.message.run)
            if a.timestamp_ms is not None:
                self.metrics.latencies.append(now - a.timestamp_ms / 1000)
        for name, block_runs in runs.items():
            self.blocks[name].attached(block_runs, now)
        if self.config.journal is not None and registered:
            with self.config.journal.open("a") as journal:
                journal.writelines(json.dumps({"name": a.message.name, "block": a.message.block, "at": now,
                                               "partition": a.source.partition, "offset": a.source.offset}) + "\n"
                                   for a in registered)

    def _send_dead(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return

        def send() -> None:
            for letter in dead:
                self._producer.send(self.config.dead_letter_topic, key=letter.source.key,
                                    value=letter.to_json(self.metrics.instance))
            self._producer.flush(timeout=30)

        self._retry("Kafka (dead-letter topic)", send)
        for letter in dead:
            self.metrics.dead_lettered[letter.kind] += 1
            self.metrics.reasons[letter.field or "message"] += 1
            logger.warning("dead letter (%s) %s[%d]@%d: %s%s", letter.kind, letter.source.topic,
                           letter.source.partition, letter.source.offset,
                           f"{letter.field}: " if letter.field else "", letter.reason)

    def _commit(self) -> None:
        from kafka.errors import CommitFailedError

        try:
            self._retry("Kafka (commit)", self._consumer.commit, give_up=(CommitFailedError,))
        except CommitFailedError as exc:  # the group rebalanced: the new owner replays the batch, harmlessly
            logger.warning("offsets not committed (%s); the batch will be replayed", exc)

    def _update_lag(self) -> bool:
        """Record the lag of each assigned partition; True when every one is known and consumed to its end."""
        lag = {}
        assigned = self._consumer.assignment()
        for tp in assigned:
            high = self._consumer.highwater(tp)
            if high is not None:
                lag[f"{tp.topic}[{tp.partition}]"] = max(0, high - self._consumer.position(tp))
        self.metrics.lag = lag
        return bool(assigned) and len(lag) == len(assigned) and not any(lag.values())

    # -- housekeeping: closing due blocks, completing rules, metrics ------------------------------------------
    def housekeeping(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_housekeeping < self.config.housekeeping_interval:
            return
        self._last_housekeeping = now
        try:
            for block in list(self.blocks.values()):
                if block.due(now, self.config.close_grace, self.config.close_quiet):
                    self.catalog.close(block)
                    self.metrics.blocks_closed += 1
                    logger.info("closed block %s:%s", self.config.rucio.scope, block.name)
                    block.rules_done = False  # the tape rules wait for the close
                elif block.dirty:
                    self.catalog.write_metadata(block)
                if not block.rules_done:
                    self._apply_rules(block)
                if not block.open and block.rules_done and not block.dirty:
                    del self.blocks[block.name]  # done with it; a late file brings it back
            self.metrics.last_error = None if self.metrics.state == "running" else self.metrics.last_error
        except Exception as exc:
            logger.warning("housekeeping: %s", exc)
            self.metrics.last_error = f"housekeeping: {exc}"
        self.metrics.write(self._metrics_path)

    def _adopt_open_blocks(self) -> None:
        names = self._retry("Rucio", lambda: self.catalog.open_blocks_created_since(self.config.lookback_days))
        for name in names:
            if name not in self.blocks:
                block = Block.of(name)
                block.last_attach = time.time()  # wait a quiet period before closing what another left open
                self.blocks[name] = block
        if names:
            logger.info("took over %d open block(s)", len(names))

    # -- retries ----------------------------------------------------------------------------------------------
    def _retry(self, what: str, action: Callable[[], T], give_up: tuple[type[Exception], ...] = ()) -> T:
        """Run `action` until it succeeds, waiting with exponential backoff; only a stop ends the attempts.
        Exceptions in `give_up` (and permanent configuration errors) are raised at once."""
        delay = self.config.retry.initial
        previous = self.metrics.state
        while True:
            try:
                result = action()
            except give_up:
                raise
            except _permanent() as exc:
                self.metrics.state, self.metrics.last_error = "failed", f"{what}: {exc}"
                self.metrics.write(self._metrics_path)
                raise
            except Exception as exc:
                self.metrics.state = f"waiting for {what}"
                self.metrics.last_error = f"{type(exc).__name__}: {_one_line(exc)}"
                self.metrics.write(self._metrics_path)
                logger.warning("%s failed (%s); retrying in %.1f s", what, self.metrics.last_error, delay)
                if self.stop.wait(delay):
                    raise Stopped from exc
                delay = min(delay * 2, self.config.retry.maximum)
                continue
            if self.metrics.state.startswith("waiting"):
                logger.info("%s is back", what)
                self.metrics.state = previous if not previous.startswith("waiting") else "running"
            return result


def _permanent() -> tuple[type[Exception], ...]:
    from rucio.common.exception import AccessDenied, InvalidObject

    from juno_dcs.errors import ConfigError

    return (AccessDenied, InvalidObject, ConfigError, TypeError, AttributeError, NameError)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


def _policy_rules(config: IngestConfig, client: Any) -> Callable[[str], bool]:
    from juno_dcs.errors import ConfigError
    from juno_dcs.placement.applier import apply
    from juno_dcs.placement.loader import load_policies
    from juno_dcs.topology import load_topology

    if config.policy_dir is None or config.topology is None:
        raise ConfigError("apply_rules needs policy_dir and topology")
    policies = load_policies(config.policy_dir)
    topology = load_topology(config.topology)

    def rules(did: str) -> bool:
        report = apply(client, did, policies, topology)
        for outcome in report.created:
            logger.info("rule %s on %s: %s", outcome.policy_rule, did, outcome.rule_id)
        return bool(report.done)

    return rules
