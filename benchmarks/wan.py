"""A WAN link in user space: TCP relays that add a one-way delay in each direction, for benchmarks and tests.

This machine's kernel has no `netem` (no added latency from `tc`), so the round trip between a remote site and
IHEP is made here: each route listens on a port of 127.0.0.1 and forwards to a target host:port, and every chunk
read on one side is delivered to the other `delay` seconds later (RTT = up delay + down delay), in order, through a
delay queue per direction (the reader never sleeps: a chunk read at t is written at t + delay, whatever came
before it). What the link does:

    delay      per direction; a new connection reaches the target after a handshake's 1.5 round trips (SYN,
               SYN-ACK, ACK) and the client's first bytes no earlier, so a request on a fresh connection costs
               2 RTT as on a real network, one on a kept-alive connection 1 RTT
    bandwidth  optional cap per direction in bytes/s, shared by every connection of the link (a chunk occupies
               the link for len/bandwidth before its delay starts)
    half-close EOF on one side is delivered (after the delay) as shutdown(SHUT_WR) on the other
    resets     an RST from either side, or the far side going away, is delivered as an RST (SO_LINGER 0)
    cut        cut("reset"): every connection is reset, new ones are refused (the listening sockets close);
               cut("hold"): nothing moves in either direction and new connections wait, as on a link that
               drops everything, until restore(); restore() reopens the same ports
    counters   bytes delivered per direction, connections accepted (stats())

    with WanLink([("127.0.0.1", 3306)], rtt_ms=180) as link:    # an event loop in a thread
        port = link.ports[0]                                     # 127.0.0.1:port is 3306 across the link
        link.cut(); link.restore(); link.stats()

LinkProcess has the same interface with the relay in a child process (so that the clients of a benchmark do not
share its GIL). From the shell:

    .venv/bin/python -m benchmarks.wan --rtt-ms 180 --forward 0:127.0.0.1:3306 [--forward ...]
        [--bandwidth-mbit 100]  # prints {"ports": [...]}; SIGUSR1 cuts (reset), SIGUSR2 restores, SIGTERM stops

Only 127.0.0.1 is bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import signal
import socket
import struct
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

HOST = "127.0.0.1"
CHUNK = 64 * 1024  # bytes read at once
QUEUED_CHUNKS = 64  # per direction of a connection: the reader waits when this many are in flight
EOF, RESET = b"", None  # queue markers besides data
CutMode = Literal["reset", "hold"]


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with an RST, not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed: bool = False

    def reset(self) -> None:
        if self.closed:
            return
        self.closed = True
        for writer in (self.client, self.upstream):
            if writer is not None:
                _rst(writer)
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()


class WanLink:
    """Routes (listening port -> target) sharing one link: its delays, bandwidth caps, cut state and counters."""

    def __init__(self, targets: Sequence[tuple[str, int]], rtt_ms: float = 0.0, *, up_ms: float | None = None,
                 down_ms: float | None = None, bandwidth_up: float | None = None,
                 bandwidth_down: float | None = None, ports: Sequence[int] | None = None) -> None:
        """`targets` are (host, port); `rtt_ms` is split evenly unless `up_ms` (towards the targets) or `down_ms`
        are given; bandwidths in bytes/s (None: no cap); `ports` to listen on (default: free ones)."""
        self.targets = [(str(h), int(p)) for h, p in targets]
        self.delay = {"up": (rtt_ms / 2 if up_ms is None else up_ms) / 1000,
                      "down": (rtt_ms / 2 if down_ms is None else down_ms) / 1000}
        self.bandwidth = {"up": bandwidth_up, "down": bandwidth_down}
        self.ports: list[int] = list(ports) if ports is not None else [0] * len(self.targets)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server | None] = [None] * len(self.targets)
        self._connections: set[_Connection] = set()
        self._free_at = {"up": 0.0, "down": 0.0}
        self._flowing: asyncio.Event | None = None
        self._refusing = False
        self._bytes = {"up": 0, "down": 0}
        self._accepted = 0

    # --- from any thread
    def start(self) -> WanLink:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._close())
                loop.close()

        self._thread = threading.Thread(target=run, name="wan-link", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> WanLink:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None, "the link is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def cut(self, mode: CutMode = "reset") -> None:
        """Cut the link: "reset" resets every connection and refuses new ones; "hold" stops all traffic."""
        self._call(self._cut(mode))

    def restore(self) -> None:
        self._call(self._restore())

    def stats(self) -> dict[str, int]:
        """Bytes delivered towards the targets (`bytes_up`) and back (`bytes_down`), connections accepted."""
        result: dict[str, int] = self._call(self._stats())
        return result

    def url(self, index: int = 0) -> str:
        return f"http://{HOST}:{self.ports[index]}"

    # --- in the loop
    async def _stats(self) -> dict[str, int]:
        return {"bytes_up": self._bytes["up"], "bytes_down": self._bytes["down"], "connections": self._accepted,
                "open_connections": len(self._connections)}

    async def _open(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        for index in range(len(self.targets)):
            await self._listen(index)

    async def _listen(self, index: int) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._relay(index, reader, writer)

        server = await asyncio.start_server(accept, HOST, self.ports[index], reuse_address=True, backlog=1024)
        self.ports[index] = server.sockets[0].getsockname()[1]
        self._servers[index] = server

    async def _close(self) -> None:
        for server in self._servers:
            if server is not None:
                server.close()
        for connection in list(self._connections):
            connection.reset()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _cut(self, mode: CutMode) -> None:
        assert self._flowing is not None
        if mode == "hold":
            self._flowing.clear()
            return
        self._refusing = True
        for index, server in enumerate(self._servers):
            if server is not None:
                server.close()
                self._servers[index] = None
        for connection in list(self._connections):
            connection.reset()
        self._connections.clear()

    async def _restore(self) -> None:
        assert self._flowing is not None
        self._flowing.set()
        if self._refusing:
            for index, server in enumerate(self._servers):
                if server is None:
                    await self._listen(index)
            self._refusing = False

    async def _until(self, when: float) -> None:
        """Sleep until loop time `when`, then while the link is held."""
        assert self._flowing is not None
        loop = asyncio.get_running_loop()
        while True:
            left = when - loop.time()
            if left > 0:
                await asyncio.sleep(left)
            if self._flowing.is_set():
                return
            await self._flowing.wait()

    def _departure(self, direction: str, size: int, not_before: float) -> float:
        """When a chunk read now arrives on the far side: after the link is free, its transmission, the delay."""
        now = asyncio.get_running_loop().time()
        start = max(now, not_before, self._free_at[direction])
        bandwidth = self.bandwidth[direction]
        if bandwidth:
            start += size / bandwidth
            self._free_at[direction] = start
        return start + self.delay[direction]

    async def _relay(self, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:  # accepted in the instant before the cut closed the listener
            _rst(writer)
            return
        self._accepted += 1
        loop = asyncio.get_running_loop()
        up, down = self.delay["up"], self.delay["down"]
        began = loop.time()
        connection = _Connection(writer)
        self._connections.add(connection)
        to_target: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue(QUEUED_CHUNKS)
        to_client: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue(QUEUED_CHUNKS)
        upstream: asyncio.Future[asyncio.StreamWriter] = loop.create_future()
        # the client may send once its SYN-ACK arrives; the target sees the connection when the ACK does
        client_may_send = began + up + down
        connection.tasks = [
            asyncio.create_task(self._read(reader, to_target, "up", client_may_send)),
            asyncio.create_task(self._connect(index, began + 2 * up + down, connection, to_client, upstream)),
            asyncio.create_task(self._write(to_target, upstream, "up", connection)),
            asyncio.create_task(self._write(to_client, _done(writer), "down", connection)),
        ]
        try:
            await asyncio.gather(*connection.tasks, return_exceptions=True)
        finally:
            self._connections.discard(connection)
            if not connection.closed:
                connection.closed = True
                for side in (connection.client, connection.upstream):
                    if side is not None:
                        side.close()

    async def _connect(self, index: int, when: float, connection: _Connection,
                       to_client: asyncio.Queue[tuple[float, bytes | None]],
                       upstream: asyncio.Future[asyncio.StreamWriter]) -> None:
        await self._until(when)
        host, port = self.targets[index]
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            # refused or unreachable: the client gets an RST, one way later
            await to_client.put((asyncio.get_running_loop().time() + self.delay["down"], RESET))
            upstream.cancel()
            return
        connection.upstream = writer
        upstream.set_result(writer)
        await self._read(reader, to_client, "down", 0.0)

    async def _read(self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes | None]],
                    direction: str, not_before: float) -> None:
        while True:
            try:
                data = await reader.read(CHUNK)
            except OSError:
                await queue.put((self._departure(direction, 0, not_before), RESET))
                return
            await queue.put((self._departure(direction, len(data), not_before), data))
            if not data:
                return

    async def _write(self, queue: asyncio.Queue[tuple[float, bytes | None]],
                     destination: asyncio.Future[asyncio.StreamWriter], direction: str,
                     connection: _Connection) -> None:
        try:
            writer = await destination
        except asyncio.CancelledError:
            if connection.closed or not destination.cancelled():
                raise
            return  # the target refused: the other direction delivers the RST that _connect queued
        while True:
            when, data = await queue.get()
            await self._until(when)
            if data is RESET:
                connection.reset()
                return
            if data == EOF:
                if writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                return
            try:
                writer.write(data)
                await writer.drain()
            except OSError:  # the far side went away: the sender gets an RST
                connection.reset()
                return
            self._bytes[direction] += len(data)


def _done(writer: asyncio.StreamWriter) -> asyncio.Future[asyncio.StreamWriter]:
    future: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()
    future.set_result(writer)
    return future


class LinkProcess:
    """A WanLink in a child process (same interface: start, stop, cut, restore, stats, ports, url)."""

    def __init__(self, targets: Sequence[tuple[str, int]], rtt_ms: float = 0.0, **options: Any) -> None:
        self.targets, self.rtt_ms, self.options = list(targets), rtt_ms, options
        self.ports: list[int] = []
        self._process: Any = None
        self._pipe: Any = None

    def start(self) -> LinkProcess:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child, self.targets, self.rtt_ms, self.options),
                                    daemon=True)
        self._process.start()
        if not parent.poll(30):
            raise RuntimeError("the WAN link process did not start")
        reply = parent.recv()
        if isinstance(reply, BaseException):
            raise reply
        self.ports, self._pipe = list(reply), parent
        return self

    def _ask(self, *command: Any) -> Any:
        self._pipe.send(command)
        return self._pipe.recv()

    def cut(self, mode: CutMode = "reset") -> None:
        self._ask("cut", mode)

    def restore(self) -> None:
        self._ask("restore")

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self._ask("stats")
        return result

    def url(self, index: int = 0) -> str:
        return f"http://{HOST}:{self.ports[index]}"

    def stop(self) -> None:
        if self._process is not None and self._process.is_alive():
            with contextlib.suppress(OSError, EOFError):
                self._ask("stop")
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()

    def __enter__(self) -> LinkProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def _serve(pipe: Any, targets: list[tuple[str, int]], rtt_ms: float, options: dict[str, Any]) -> None:
    try:
        link = WanLink(targets, rtt_ms, **options).start()
    except OSError as exc:
        pipe.send(exc)
        return
    pipe.send(link.ports)
    try:
        while True:
            command, *args = pipe.recv()
            if command == "stop":
                break
            pipe.send(getattr(link, command)(*args))
    finally:
        link.stop()
        with contextlib.suppress(OSError):
            pipe.send(None)


def _forward(text: str) -> tuple[int, str, int]:
    listen, host, port = text.rsplit(":", 2) if text.count(":") >= 2 else ("0", *text.rsplit(":", 1))
    if host not in ("127.0.0.1", "localhost"):
        raise argparse.ArgumentTypeError(f"{text}: this link forwards to 127.0.0.1 only")
    return int(listen), HOST, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forward", type=_forward, action="append", required=True,
                        metavar="[LISTEN:]127.0.0.1:PORT", help="a route (LISTEN 0 or omitted: a free port)")
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--up-ms", type=float, help="one-way delay towards the targets (default RTT/2)")
    parser.add_argument("--down-ms", type=float, help="one-way delay back (default RTT/2)")
    parser.add_argument("--bandwidth-mbit", type=float, help="cap per direction, Mbit/s")
    args = parser.parse_args(argv)
    rate = args.bandwidth_mbit * 1e6 / 8 if args.bandwidth_mbit else None
    link = WanLink([(h, p) for _, h, p in args.forward], args.rtt_ms, up_ms=args.up_ms, down_ms=args.down_ms,
                   bandwidth_up=rate, bandwidth_down=rate, ports=[listen for listen, _, _ in args.forward])
    link.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=link.cut).start())
    signal.signal(signal.SIGUSR2, lambda *_: threading.Thread(target=link.restore).start())
    print(json.dumps({"ports": link.ports, "targets": [f"{h}:{p}" for h, p in link.targets],
                      "rtt_ms": args.rtt_ms}), flush=True)
    stop.wait()
    print(json.dumps(link.stats()), flush=True)
    link.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
