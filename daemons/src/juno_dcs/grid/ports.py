"""Every port of a grid, derived from its base port; all bind to 127.0.0.1.

The offsets are part of the grid's interface (docs/admin.md lists them); later components take the
slots reserved for them here so that two grids on different base ports never collide.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from juno_dcs.errors import ConfigError

HOST = "127.0.0.1"
SPAN = 100  # ports reserved per grid: base .. base+SPAN-1

OFFSETS: dict[str, int] = {
    "rucio": 0,  # Rucio REST API and /auth (gunicorn)
    "supervisor": 1,  # supervisord XML-RPC
    "activemq_stomp": 2,  # ActiveMQ STOMP, fed by hermes
    # 10..29: one XRootD server per RSE (grid/storage.py)
    "fts": 30,  # the FTS3-compatible transfer service's REST API
    "kafka": 31,  # Apache Kafka 0.9 broker (grid/kafka.py)
    "zookeeper": 32,  # its ZooKeeper
    "issuer": 33,  # the token issuer (HTTPS, OpenID Connect discovery and JWKS; grid/issuer.py)
    "gateway": 34,  # a node's gateway, on its swarm address, when the grid spans several nodes (swarm/gateway.py)
    "postgres": 35,  # a swarm grid's own PostgreSQL (swarm/databases.py; settings.swarm_databases)
    "mariadb": 36,  # a swarm grid's own MariaDB for the condition data
    # 37..39: free
    "conditions": 40,  # the conditions service (HTTP, read-only)
    # 41..49: one Squid per data centre in front of it (grid/conditions.py)
    "dispatcher": 50,  # the workload management's dispatcher (juno-wms serve); 51..59: free
    "dashboard": 60,  # the operators' dashboard (juno-dashboard serve)
    "webui": 61,  # nginx with TLS: the Rucio WebUI, with /proxy and /auth to the Rucio REST API on one origin
    "webui_app": 62,  # the WebUI's own Flask application behind nginx
    # 63..69: free
}


@dataclass(frozen=True)
class PortMap:
    base: int

    def __post_init__(self) -> None:
        if not 1024 <= self.base <= 65535 - SPAN:
            raise ConfigError(f"--base-port {self.base}: must be between 1024 and {65535 - SPAN}")

    def port(self, name: str) -> int:
        return self.base + OFFSETS[name]

    @property
    def rucio(self) -> int:
        return self.port("rucio")

    @property
    def supervisor(self) -> int:
        return self.port("supervisor")

    @property
    def activemq_stomp(self) -> int:
        return self.port("activemq_stomp")

    @property
    def fts(self) -> int:
        return self.port("fts")

    @property
    def kafka(self) -> int:
        return self.port("kafka")

    @property
    def zookeeper(self) -> int:
        return self.port("zookeeper")

    def url(self, name: str, scheme: str = "http") -> str:
        """The loopback URL of one of the grid's services."""
        return f"{scheme}://{HOST}:{self.port(name)}"

    def busy(self) -> list[int]:
        """The ports of this grid's range that something already listens on (the storage elements' too)."""
        return [p for p in range(self.base, self.base + SPAN) if port_open(p, timeout=0.05)]


def port_open(port: int, host: str = HOST, timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0
