"""FTS3-style transfer-completion messages on the grid's message broker (STOMP), which Rucio's
conveyor-receiver consumes: as with a production FTS, Rucio learns about finished transfers at once
instead of waiting for its poller (which leaves a polled request alone for ten minutes)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from typing import Any

import stomp
import stomp.exception

from juno_dcs.transfer import db
from juno_dcs.transfer.config import MessagingConfig

logger = logging.getLogger(__name__)


def _ms(value: dt.datetime | None) -> int:
    return int(value.timestamp() * 1000) if value is not None else 0


def completion(row: db.Row, job: db.Row, job_state: str, endpoint: str, vo: str) -> dict[str, Any]:
    """The completion message of one file in its final state, with the fields FTS3 sends."""
    ok = row["file_state"] == "FINISHED" or (row["file_state"] == "ARCHIVING")
    finished = row["finish_time"] or dt.datetime.now(dt.UTC)
    return {
        "endpnt": endpoint,
        "vo": vo,
        "job_id": row["job_id"],
        "file_id": row["file_id"],
        "tr_id": f"{finished:%Y-%m-%d-%H%M}__{socket.gethostname()}__{row['file_id']}__{row['job_id']}",
        "job_state": job_state,
        "job_multihop": False,
        "file_state": row["file_state"],
        "t_final_transfer_state": "Ok" if ok else "Error",
        "t__error_message": row["reason"] or "",
        "t_error_code": 0 if ok else 1,
        "is_archiving": row["file_state"] == "ARCHIVING",
        "src_url": row["source_surl"],
        "dst_url": row["dest_surl"],
        "src_hostname": row["source_se"],
        "dst_hostname": row["dest_se"],
        "file_metadata": row["file_metadata"] if isinstance(row["file_metadata"], dict) else {},
        "job_metadata": job["job_metadata"] if isinstance(job["job_metadata"], dict) else {},
        "file_size": row["filesize"] or 0,
        "tr_timestamp_start": _ms(row["start_time"]),
        "tr_timestamp_complete": _ms(finished),
        "retry": row["retry_count"],
    }


class Publisher:
    """Sends messages to one STOMP destination; reconnects when needed; never raises into the caller:
    a lost message only delays Rucio until its poller looks."""

    def __init__(self, config: MessagingConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.conn: stomp.Connection12 | None = None

    def _connect(self) -> stomp.Connection12:
        if self.conn is not None and self.conn.is_connected():
            return self.conn
        conn = stomp.Connection12([(self.config.host, self.config.port)], timeout=5, keepalive=True)
        conn.connect(self.config.username, self.config.password, wait=True)
        self.conn = conn
        return conn

    def send(self, message: dict[str, Any]) -> bool:
        body = json.dumps(message, default=str)
        with self.lock:
            for attempt in (1, 2):
                try:
                    self._connect().send(destination=self.config.destination, body=body,
                                         headers={"persistent": "true", "vo": message.get("vo", "")})
                    return True
                except (stomp.exception.StompException, OSError) as exc:
                    self.conn = None
                    if attempt == 2:
                        logger.warning("could not publish the completion of file %s: %s", message.get("file_id"), exc)
        return False

    def close(self) -> None:
        with self.lock:
            if self.conn is not None and self.conn.is_connected():
                self.conn.disconnect()
            self.conn = None
