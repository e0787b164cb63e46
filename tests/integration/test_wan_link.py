"""benchmarks/wan.py, the user-space WAN link, against real TCP servers on 127.0.0.1: round-trip time, byte order and
integrity, many connections at once, half-close, resets, a cut link, the bandwidth cap, the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import signal
import socket
import socketserver
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.wan import LinkProcess, WanLink

ROOT = Path(__file__).resolve().parents[2]


class _Echo(socketserver.BaseRequestHandler):
    """Echo until EOF, then half-close; a chunk b"RST!" is answered with an RST."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while data := sock.recv(256 * 1024):
                if data == b"RST!":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.close()  # before socketserver's shutdown(SHUT_WR), which would send a FIN first
                    return
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[str, int]]:
    server = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()


def _connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f"EOF after {len(data)} of {size} bytes")
        data += chunk
    return data


@pytest.mark.parametrize("rtt_ms", [20, 100, 200])
def test_ping_pong_round_trip_is_the_configured_one(echo: tuple[str, int], rtt_ms: int) -> None:
    with WanLink([echo], rtt_ms=rtt_ms) as link, _connect(link.ports[0]) as sock:
        began = time.perf_counter()
        sock.sendall(b"x")
        assert _recv_exact(sock, 1) == b"x"
        first = time.perf_counter() - began
        times = []
        for i in range(7):
            began = time.perf_counter()
            sock.sendall(bytes([i]))
            assert _recv_exact(sock, 1) == bytes([i])
            times.append(time.perf_counter() - began)
    rtt = statistics.median(times) * 1000
    # The link never delivers early; a loaded 2-core host may deliver late, so the upper bound is loose (and still
    # tells 20 ms from 100 ms from 200 ms). Exact figures are benchmarks/wan.py's business, not an assertion's.
    assert 0.95 * rtt_ms <= rtt <= _late(rtt_ms), (rtt, times)
    # a fresh connection's first exchange waits for the handshake too: 2 RTT
    assert 0.95 * 2 * rtt_ms <= first * 1000 <= _late(2 * rtt_ms), first


def _late(ms: float) -> float:
    """The latest a delayed delivery may arrive on a busy host: a quarter late, plus scheduling slack."""
    return 1.25 * ms + 15


def test_100_mb_through_the_link_intact(echo: tuple[str, int]) -> None:
    """100 MB out and back (random bytes), then a half-close: the echo ends and the checksums match."""
    rng = random.Random(26)  # noqa: S311
    blocks = [rng.randbytes(1024 * 1024) for _ in range(8)]
    sent, received = hashlib.sha256(), hashlib.sha256()
    total = 100 * 1024 * 1024
    with WanLink([echo]) as link, _connect(link.ports[0], timeout=30) as sock:
        def send() -> None:
            for i in range(100):
                block = blocks[(i * 5) % 8][i:] + blocks[(i * 5) % 8][:i]  # every MB differs from its neighbours
                sent.update(block)
                sock.sendall(block)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        began = time.perf_counter()
        sender.start()
        count = 0
        while data := sock.recv(1024 * 1024):
            received.update(data)
            count += len(data)
        sender.join()
        seconds = time.perf_counter() - began
        stats = link.stats()
    assert count == total
    assert received.hexdigest() == sent.hexdigest()
    assert (stats["bytes_up"], stats["bytes_down"]) == (total, total)
    print(f"100 MB each way through the link in {seconds:.1f} s")


def test_200_concurrent_connections_each_echo_their_own(echo: tuple[str, int]) -> None:
    async def one(port: int, i: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        message = f"connection {i} ".encode() * (1 + i % 50)
        writer.write(message)
        writer.write_eof()
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        assert answer == message, i
        return answer

    async def everyone(port: int) -> list[bytes]:
        return await asyncio.wait_for(asyncio.gather(*(one(port, i) for i in range(200))), timeout=30)

    with WanLink([echo], rtt_ms=20) as link:
        began = time.perf_counter()
        answers = asyncio.run(everyone(link.ports[0]))
        seconds = time.perf_counter() - began
        assert link.stats()["connections"] == 200
    assert len(answers) == 200
    assert seconds < 5, seconds  # all at once: a few round trips, not 200 of them


def test_half_close_both_ways(echo: tuple[str, int]) -> None:
    """The client's EOF reaches the server (which then answers and half-closes); the client reads to EOF."""
    with WanLink([echo], rtt_ms=40) as link, _connect(link.ports[0]) as sock:
        sock.sendall(b"hello, ")
        sock.sendall(b"world")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(100):
            data += chunk
    assert data == b"hello, world"


def test_resets_and_a_missing_target_reach_the_client(echo: tuple[str, int]) -> None:
    with WanLink([echo, ("127.0.0.1", _unused_port())], rtt_ms=20) as link:
        with _connect(link.ports[0]) as sock:
            sock.sendall(b"RST!")  # the server answers with an RST
            with pytest.raises(ConnectionResetError):
                sock.recv(10)
        with _connect(link.ports[1]) as sock:  # nobody listens behind the link
            sock.sendall(b"anyone?")
            with pytest.raises(ConnectionResetError):
                sock.recv(10)
        with _connect(link.ports[0]) as sock:  # the client resets: the link and the server carry on
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.sendall(b"bye")
        deadline = time.monotonic() + 5
        while link.stats()["open_connections"]:
            assert time.monotonic() < deadline, link.stats()
            time.sleep(0.05)


def test_a_cut_link_resets_refuses_and_comes_back(echo: tuple[str, int]) -> None:
    with WanLink([echo], rtt_ms=20) as link:
        port = link.ports[0]
        with _connect(port, timeout=5) as sock:
            sock.sendall(b"before")
            assert _recv_exact(sock, 6) == b"before"
            link.cut()
            began = time.monotonic()
            with pytest.raises(ConnectionResetError):
                _exchange(sock, b"during")
            assert time.monotonic() - began < 1
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        link.restore()
        assert link.ports[0] == port
        with _connect(port, timeout=5) as sock:
            sock.sendall(b"after")
            assert _recv_exact(sock, 5) == b"after"


def test_a_held_link_delivers_nothing_until_restored(echo: tuple[str, int]) -> None:
    with WanLink([echo], rtt_ms=20) as link, _connect(link.ports[0], timeout=0.5) as sock:
        sock.sendall(b"one")
        assert _recv_exact(sock, 3) == b"one"
        link.cut("hold")
        sock.sendall(b"two")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        with _connect(link.ports[0], timeout=0.5) as other:  # new connections wait as well
            other.sendall(b"three")
            with pytest.raises(TimeoutError):
                other.recv(10)
            link.restore()
            other.settimeout(5)
            assert _recv_exact(other, 5) == b"three"
        sock.settimeout(5)
        assert _recv_exact(sock, 3) == b"two"


def test_bandwidth_cap(echo: tuple[str, int]) -> None:
    """4 MB/s each way: 2 MB out and back take about 0.5 s longer than without a cap, not less."""
    with WanLink([echo], bandwidth_up=4e6, bandwidth_down=4e6) as link, _connect(link.ports[0]) as sock:
        began = time.perf_counter()
        sock.sendall(b"z" * 2_000_000)
        sock.shutdown(socket.SHUT_WR)
        count = 0
        while data := sock.recv(1 << 20):
            count += len(data)
        seconds = time.perf_counter() - began
    assert count == 2_000_000
    assert 0.45 < seconds < 1.5, seconds


def test_link_in_a_process_and_the_cli(echo: tuple[str, int]) -> None:
    with LinkProcess([echo], rtt_ms=20) as link, _connect(link.ports[0]) as sock:
        sock.sendall(b"ping")
        assert _recv_exact(sock, 4) == b"ping"
        assert link.stats()["bytes_up"] == 4
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.wan", "--rtt-ms", "20", "--forward",
                             f"{echo[0]}:{echo[1]}"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ports = json.loads(proc.stdout.readline())["ports"]
        with _connect(ports[0]) as sock:
            sock.sendall(b"pong")
            assert _recv_exact(sock, 4) == b"pong"
        proc.send_signal(signal.SIGTERM)
        stats = json.loads(proc.stdout.readline())
        assert proc.wait(timeout=10) == 0
        assert stats["bytes_down"] == 4
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait(timeout=10)


def _exchange(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(len(data))


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
