"""Serve an ASGI application with uvicorn, optionally on a port that other processes share (SO_REUSEPORT).

Two instances of the transfer service's REST API or of the dispatcher can then listen on one address, each in
its own container on the host's network (the Swarm stack's second replica, docs/deploy.md): the kernel spreads
new connections between them.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess


class _SharedPortConfig(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, self.port))
        sock.set_inheritable(True)
        return sock


def serve(app: str, host: str, port: int, workers: int, reuse_port: bool = False, **options: Any) -> None:
    """uvicorn.run(app, ...), with `reuse_port` binding the listening socket with SO_REUSEPORT."""
    if not reuse_port:
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    config = _SharedPortConfig(app, host=host, port=port, workers=workers, **options)
    sock = config.bind_socket()
    if config.workers > 1:
        Multiprocess(config, sockets=[sock]).run()  # as uvicorn.run does (uvicorn is pinned: constraints.txt)
    else:
        uvicorn.Server(config).run(sockets=[sock])
