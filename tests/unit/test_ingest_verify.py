"""The check at the SE against SEs that are not there or not XRootD: a transient error at once, never a verdict
on the file (the real SE's answers are tested in tests/integration/test_ingest_faults.py)."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time

import pytest

from juno_dcs.ingest import verify
from juno_dcs.ingest.message import FileArrived
from juno_rucio_policy.paths import path_for

NAME = "RUN.001000.phys.00001.20260301.rtraw"
MESSAGE = FileArrived(version=1, spade_id="s-1", name=NAME, size=10, adler32="0000000a",
                      location=f"davs://localhost:1/{path_for('raw', NAME)}", run=1000, stream="phys",
                      received_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_se_that_refuses_connections_is_unavailable_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(verify.StorageUnavailable, match=r"root://localhost:\d+/raw/.*: \[FATAL\] Connection error"):
        verify.problems([MESSAGE], f"root://localhost:{_closed_port()}/", threads=2, token="secret.token.value")
    assert time.monotonic() - started < 30  # XrdCl's defaults would retry for minutes


def test_a_token_never_appears_in_the_error() -> None:
    with pytest.raises(verify.StorageUnavailable) as caught:
        verify.problem(MESSAGE, f"root://localhost:{_closed_port()}/", "eyJhbGciOi.payload.signature")
    assert "eyJ" not in str(caught.value)
    assert "authz" not in str(caught.value)


def test_a_server_that_is_not_xrootd_is_unavailable_not_a_missing_file() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def answer_nonsense() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        threading.Thread(target=answer_nonsense, daemon=True).start()
        with pytest.raises(verify.StorageUnavailable):
            verify.problem(MESSAGE, f"root://localhost:{server.getsockname()[1]}/")
