"""The transfer worker: claims files link by link within the optimizer's limits, copies them with gfal2 in
a thread pool, moves tape files through STAGING and ARCHIVING, recovers transfers whose worker vanished,
and keeps job states right. Any number of workers (and service instances) may share one database: each worker
claims only the files of its share (file_id modulo the live workers' count, from its heartbeats), rows are
claimed with FOR UPDATE SKIP LOCKED (so two workers that disagree on the count for one beat never take the same
file), and each link's slots are counted under an advisory lock (so the optimizer's limit holds for all workers
together). Recovery, staging and archiving lock their rows with SKIP LOCKED too and are done by every worker.

`run_once(share)` is one pass for the runner (juno_dcs.daemon); `idle(seconds)` sleeps until a submission or a
finished copy NOTIFYs; `drain()` waits for the running copies at the end."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from juno_dcs.heartbeat import ALL, Share
from juno_dcs.tokens.sealed import Sealer
from juno_dcs.transfer import copier, db, logic
from juno_dcs.transfer.config import TransferConfig
from juno_dcs.transfer.keeper import CLEANUP_S, MARGIN_S, TokenKeeper
from juno_dcs.transfer.messages import Publisher, completion
from juno_dcs.transfer.optimizer import Window, decide
from juno_dcs.transfer.states import FileState

logger = logging.getLogger(__name__)
Pool = ConnectionPool[psycopg.Connection[db.Row]]


def _later(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


class Worker:
    def __init__(self, config: TransferConfig, pool: Pool, name: str | None = None) -> None:
        self.config = config
        self.keeper = TokenKeeper(Sealer(config.token_key_file), config.exchange)
        self.pool = pool
        self.publisher = Publisher(config.messaging) if config.messaging is not None else None
        self.name = name or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.executor = ThreadPoolExecutor(max_workers=config.worker.threads, thread_name_prefix="copy")
        self.running: dict[int, Future[None]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.last_heartbeat = 0.0
        self.last_decision: dict[tuple[str, str], float] = {}
        self.last_throughput: dict[tuple[str, str], float | None] = {}
        self.listener: psycopg.Connection[tuple[object, ...]] | None = None

    # --- the runner's pass and sleep
    def run_once(self, share: Share = ALL) -> bool:
        """One pass (juno_dcs.daemon): True (sleep) when it started no copy."""
        return not self.cycle(share)

    def idle(self, timeout: float) -> None:
        """Sleep until a submission or a finished copy NOTIFYs (or `timeout` passes)."""
        try:
            if self.listener is None or self.listener.closed:
                self.listener = db.listen(self.pool.conninfo)
            db.wait_for_work(self.listener, timeout)
        except psycopg.OperationalError as exc:  # no notifications for now: plain polling still works
            logger.warning("LISTEN connection lost (%s); polling", exc)
            self.listener = None
            self.stop.wait(timeout)

    def drain(self) -> None:
        for future in list(self.running.values()):
            future.result()
        self.executor.shutdown(wait=True)
        if self.publisher is not None:
            self.publisher.close()
        if self.listener is not None:
            self.listener.close()

    def _publish(self, file_ids: list[int]) -> None:
        """Completion messages for files that reached a final state (after their transaction committed)."""
        if self.publisher is None or self.config.messaging is None or not file_ids:
            return
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT * FROM fts.files WHERE file_id = ANY(%s)", (file_ids,)).fetchall()
            jobs = db.get_jobs(conn, list({r["job_id"] for r in rows}))
            conn.commit()
        for row in rows:
            job = jobs[row["job_id"]]
            self.publisher.send(completion(row, job, job["job_state"], self.config.messaging.endpoint,
                                           self.config.vo))

    def cycle(self, share: Share = ALL) -> bool:
        """One pass: heartbeats, recovery, staging, archiving, optimizer, claims. True if it started work."""
        self._reap_finished()
        self._heartbeat()
        self._recover_lost()
        self._stage()
        self._archive()
        return self._claim_and_start(share)

    # --- bookkeeping
    def _reap_finished(self) -> None:
        with self.lock:
            for file_id, future in list(self.running.items()):
                if future.done():
                    del self.running[file_id]
                    exc = future.exception()
                    if exc is not None:
                        logger.error("copy of file %d crashed: %s", file_id, exc)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self.last_heartbeat < self.config.worker.heartbeat_interval:
            return
        self.last_heartbeat = now
        with self.lock:
            ids = list(self.running)
        if ids:
            with self.pool.connection() as conn, conn.transaction():
                db.heartbeat(conn, ids, self.name)

    def _recover_lost(self) -> None:
        """ACTIVE files whose worker stopped beating (killed, crashed): retried, or failed with the reason."""
        failed: list[int] = []
        with self.pool.connection() as conn, conn.transaction():
            for row in db.stale_active(conn, self.config.worker.lease):
                with self.lock:
                    if row["file_id"] in self.running:
                        continue
                copier.remove_quietly(row["dest_surl"], token=self.keeper.token(row["dest_token"], CLEANUP_S))
                reason = f"transfer lost: worker {row['worker']} stopped reporting during the copy"
                if row["retry_count"] < row["retry"]:
                    db.update_file(conn, row["file_id"], file_state=FileState.SUBMITTED.value,
                                   retry_count=row["retry_count"] + 1, reason=reason + "; retried",
                                   next_attempt=_later(row["retry_delay"]), worker=None)
                else:
                    db.update_file(conn, row["file_id"], file_state=FileState.FAILED.value, reason=reason,
                                   finish_time=dt.datetime.now(dt.UTC), worker=None)
                    if not self._fallback(conn, row):
                        failed.append(row["file_id"])
                logger.warning("file %d: %s", row["file_id"], reason)
                logic.refresh_job(conn, row["job_id"])
        self._publish(failed)

    def _stage(self) -> None:
        """Tape sources: SUBMITTED -> STAGING (bring online takes the endpoint's delay) -> SUBMITTED, staged."""
        tapes = list(self.config.tape)
        if not tapes:
            return
        with self.pool.connection() as conn, conn.transaction():
            for row in db.unstaged(conn, tapes):
                delay = self.config.tape[row["source_se"]].staging_delay
                db.update_file(conn, row["file_id"], file_state=FileState.STAGING.value,
                               staging_start=dt.datetime.now(dt.UTC), next_attempt=_later(delay))
                logic.refresh_job(conn, row["job_id"])
            for row in db.due(conn, FileState.STAGING.value):
                db.update_file(conn, row["file_id"], file_state=FileState.SUBMITTED.value,
                               staging_finished=dt.datetime.now(dt.UTC), next_attempt=dt.datetime.now(dt.UTC))
                logic.refresh_job(conn, row["job_id"])

    def _archive(self) -> None:
        """Tape destinations: ARCHIVING until the endpoint's delay passed and the file is there -> FINISHED."""
        done: list[int] = []
        with self.pool.connection() as conn, conn.transaction():
            for row in db.due(conn, FileState.ARCHIVING.value):
                if copier.exists(row["dest_surl"], self.keeper.token(row["dest_token"], CLEANUP_S)):
                    db.update_file(conn, row["file_id"], file_state=FileState.FINISHED.value,
                                   finish_time=dt.datetime.now(dt.UTC))
                else:
                    db.update_file(conn, row["file_id"], file_state=FileState.FAILED.value,
                                   reason="ARCHIVING: the file vanished from the tape buffer before migration",
                                   finish_time=dt.datetime.now(dt.UTC))
                logic.refresh_job(conn, row["job_id"])
                done.append(row["file_id"])
        self._publish(done)

    # --- claims and the optimizer
    def _claim_and_start(self, share: Share) -> bool:
        started = False
        with self.pool.connection() as conn:
            links = db.waiting_links(conn)
            conn.commit()
        for link in links:
            key = (link["source_se"], link["dest_se"])
            free_threads = self.config.worker.threads - len(self.running)
            if free_threads <= 0:
                break
            with self.pool.connection() as conn, conn.transaction():
                db.lock_link(conn, *key)
                limit = self._limit(conn, key, int(link["ready"]))
                slots = min(limit - db.active_on_link(conn, *key), free_threads)
                if slots <= 0:
                    continue
                claimed = db.claim(conn, key[0], key[1], slots, self.name, list(self.config.tape), share)
                for job_id in sorted({row["job_id"] for row in claimed}):  # one lock order for every worker
                    logic.refresh_job(conn, job_id)
            for row in claimed:
                with self.lock:
                    self.running[row["file_id"]] = self.executor.submit(self._copy, row)
                started = True
        return started

    def _limit(self, conn: psycopg.Connection[db.Row], key: tuple[str, str], ready: int) -> int:
        cfg = self.config.optimizer
        current = db.link_limit(conn, *key)
        if current is None:
            db.set_link_limit(conn, *key, cfg.start)
            db.record_decision(conn, {"source_se": key[0], "dest_se": key[1], "previous": cfg.start,
                                      "active_limit": cfg.start, "success_rate": None, "throughput": None,
                                      "queued": ready, "reason": f"new link: start at {cfg.start}"})
            return cfg.start
        now = time.monotonic()
        if now - self.last_decision.get(key, 0.0) < cfg.interval:
            return current
        self.last_decision[key] = now
        stats = db.link_window(conn, key[0], key[1], cfg.interval)
        aggregate = float(stats["bytes"]) / cfg.interval / 1e6 if stats["bytes"] else None
        window = Window(ok=int(stats["ok"]), failed=int(stats["failed"]), throughput=aggregate, queued=ready,
                        active=db.active_on_link(conn, *key))
        decision = decide(current, window, self.last_throughput.get(key), cfg)
        if window.ok or window.failed:
            self.last_throughput[key] = aggregate
        if decision.limit != current or window.ok or window.failed:
            db.set_link_limit(conn, *key, decision.limit)
            db.record_decision(conn, {"source_se": key[0], "dest_se": key[1], "previous": current,
                                      "active_limit": decision.limit, "success_rate": decision.success_rate,
                                      "throughput": aggregate, "queued": ready, "reason": decision.reason})
        return decision.limit

    # --- one copy, in a pool thread
    def _copy(self, row: db.Row) -> None:
        with self.pool.connection() as conn:
            job = db.job_of_file(conn, row["job_id"])
            conn.commit()
        mode = job["copy_mode"] or self.config.links.mode(row["source_se"], row["dest_se"])
        timeout = job["timeout"] or self.config.worker.default_timeout
        request = copier.CopyRequest(
            source=row["source_surl"], destination=row["dest_surl"], mode=mode,
            checksum_mode=job["verify_checksum"], checksum=row["checksum"], overwrite=job["overwrite"],
            timeout=timeout,
            source_token=self.keeper.token(row["source_token"], timeout + MARGIN_S),
            dest_token=self.keeper.token(row["dest_token"], timeout + MARGIN_S),
            filesize=row["filesize"],
        )
        with self.pool.connection() as conn, conn.transaction():
            db.update_file(conn, row["file_id"], copy_mode=mode)
        result = copier.copy(request)
        self._finish(row, job, result, mode)

    def _finish(self, row: db.Row, job: db.Row, result: copier.CopyResult, mode: str) -> None:
        now = dt.datetime.now(dt.UTC)
        final: list[int] = []
        with self.pool.connection() as conn, conn.transaction():
            db.lock_job(conn, row["job_id"])  # one job's files finish one at a time
            fields: dict[str, Any] = {"finish_time": now, "worker": None}
            if result.ok:
                tape = self.config.tape.get(row["dest_se"])
                fields |= {"transferred": result.size, "throughput": result.throughput_mb_s, "reason": None}
                if tape is not None:
                    fields |= {"file_state": FileState.ARCHIVING.value, "archive_start": now,
                               "next_attempt": _later(tape.archive_delay)}
                else:
                    fields["file_state"] = FileState.FINISHED.value
                if not db.update_file(conn, row["file_id"], only_if=FileState.ACTIVE.value, **fields):
                    # canceled while copying: leave nothing behind
                    copier.remove_quietly(row["dest_surl"], token=self.keeper.token(row["dest_token"], CLEANUP_S))
                else:
                    self._retire_alternatives(conn, row)
                    if tape is None:
                        final.append(row["file_id"])
            elif row["retry_count"] < job["retry"]:
                db.update_file(conn, row["file_id"], only_if=FileState.ACTIVE.value,
                               file_state=FileState.SUBMITTED.value, retry_count=row["retry_count"] + 1,
                               reason=result.reason, next_attempt=_later(job["retry_delay"]), finish_time=now,
                               worker=None)
            else:
                if db.update_file(conn, row["file_id"], only_if=FileState.ACTIVE.value,
                                  file_state=FileState.FAILED.value, reason=result.reason, **fields) \
                        and not self._fallback(conn, row):
                    final.append(row["file_id"])
            logic.refresh_job(conn, row["job_id"])
            conn.execute(f"NOTIFY {db.WORK_CHANNEL}")  # a thread is free: claim the next file now
        self._publish(final)
        logger.info("file %d %s -> %s (%s): %s %s", row["file_id"], row["source_surl"], row["dest_surl"], mode,
                    "ok" if result.ok else "failed", result.reason)

    def _fallback(self, conn: psycopg.Connection[db.Row], row: db.Row) -> bool:
        """A failed source of a multi-source file: the next alternative source gets its turn (True)."""
        nxt = db.next_alternative(conn, row["job_id"], row["file_index"], row["source_rank"])
        if nxt is None:
            return False
        db.update_file(conn, nxt["file_id"], file_state=FileState.SUBMITTED.value, next_attempt=dt.datetime.now(dt.UTC),
                       reason=f"source {row['source_surl']} failed: trying this one")
        return True

    def _retire_alternatives(self, conn: psycopg.Connection[db.Row], row: db.Row) -> None:
        conn.execute(
            "UPDATE fts.files SET reason = 'another source succeeded' WHERE job_id = %s AND file_index = %s "
            "AND file_state = 'NOT_USED'", (row["job_id"], row["file_index"]),
        )
