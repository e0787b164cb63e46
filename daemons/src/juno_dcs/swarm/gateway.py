"""The node gateway: on a swarm of several nodes, each node reaches the services of the others at their loopback
addresses, as on the box.

Every program of the stack listens on 127.0.0.1 of its own node (the host's network), so the rendered home, the
certificates (issued for localhost) and the commands are the same on every node. The gateway of a node listens on
127.0.0.1 at the ports of the services that run on the other nodes, and carries each connection to the gateway
of the node that runs it, over TLS with client certificates of the grid's CA (CN `juno-dcs-gateway` on both
ends). That gateway connects to the service on its own loopback, for the ports of its own services only: nothing
else of a node's loopback (the supervisor, a database) is reachable through it.

The plan (`HOME/etc/gateway.yaml`, written by `up --engine swarm`) names every node, the address its gateway
listens on (the node's swarm address) and the ports of its services. A site is one node: each site's label must
be on exactly one node when the grid spans several (docs/deploy.md).

    python -m juno_dcs.swarm.gateway --plan HOME/etc/gateway.yaml --node NODE_ID [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from juno_dcs.errors import ConfigError

logger = logging.getLogger("juno_dcs.gateway")

PEER_NAME = "juno-dcs-gateway"  # the CN of the gateways' certificate, checked on both ends
GREETING = b"JDCS-GW/1 "  # then the port, then a newline
GREETING_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
CHUNK = 1 << 16
MAX_FRAME = 1 << 20
END_FRAME = bytes(4)


@dataclass(frozen=True)
class Member:
    """One node of the grid: where its gateway listens and the loopback ports of the services it runs."""

    node: str
    address: str
    sites: tuple[str, ...]
    ports: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    port: int  # the gateways' port on every node's address
    cert: Path
    key: Path
    ca: Path
    members: tuple[Member, ...]

    def member(self, node: str) -> Member:
        for m in self.members:
            if m.node == node:
                return m
        known = ", ".join(m.node for m in self.members)
        raise ConfigError(f"node {node!r} is not in the gateway plan (nodes: {known})")

    def remote(self, node: str) -> dict[int, Member]:
        """Every port served by another node, and that node."""
        return {p: m for m in self.members if m.node != node for p in m.ports}

    def as_dict(self) -> dict[str, Any]:
        return {"port": self.port, "cert": str(self.cert), "key": str(self.key), "ca": str(self.ca),
                "nodes": [{"node": m.node, "address": m.address, "sites": list(m.sites), "ports": list(m.ports)}
                          for m in self.members]}


def make_plan(port: int, cert: Path, key: Path, ca: Path, addresses: Mapping[str, str],
              sites_of_node: Mapping[str, Sequence[str]], ports_of_site: Mapping[str, Sequence[int]]) -> Plan:
    """The plan of a grid whose sites are spread over nodes; every port must be served by one node only."""
    members = []
    seen: dict[int, str] = {}
    for node in sorted(sites_of_node):
        sites = tuple(sorted(sites_of_node[node]))
        ports = tuple(sorted({p for s in sites for p in ports_of_site.get(s, ())}))
        for p in ports:
            if p in seen:
                raise ConfigError(f"port {p} is served on node {seen[p]} and on node {node}: a site is one node")
            seen[p] = node
        members.append(Member(node=node, address=addresses[node], sites=sites, ports=ports))
    if port in seen:
        raise ConfigError(f"the gateway's port {port} is also a service's port (node {seen[port]})")
    return Plan(port=port, cert=cert, key=key, ca=ca, members=tuple(members))


def _field(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{where}: '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def load_plan(path: Path) -> Plan:
    """Read a plan, naming the file and the field at fault."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the gateway plan: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the gateway plan must be a mapping")
    where = str(path)
    nodes = _field(raw, "nodes", list, where)
    members = []
    for i, entry in enumerate(nodes):
        at = f"{where}: nodes[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: must be a mapping")
        ports = _field(entry, "ports", list, at)
        if not all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports):
            raise ConfigError(f"{at}: 'ports' must be TCP ports, got {ports!r}")
        sites = _field(entry, "sites", list, at)
        members.append(Member(node=_field(entry, "node", str, at), address=_field(entry, "address", str, at),
                              sites=tuple(str(s) for s in sites), ports=tuple(ports)))
    port = _field(raw, "port", int, where)
    return Plan(port=port, cert=Path(_field(raw, "cert", str, where)), key=Path(_field(raw, "key", str, where)),
                ca=Path(_field(raw, "ca", str, where)), members=tuple(members))


# --- TLS between gateways

def tls_contexts(plan: Plan) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: both ends present the gateways' certificate and require the other's, signed by
    the grid's CA. The peer's name is checked against PEER_NAME after the handshake (a node's address is not in
    the certificate)."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(plan.ca))
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_cert_chain(str(plan.cert), str(plan.key))
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(plan.ca))
    client.check_hostname = False
    client.verify_mode = ssl.CERT_REQUIRED
    client.load_cert_chain(str(plan.cert), str(plan.key))
    return server, client


def peer_is_gateway(writer: asyncio.StreamWriter) -> bool:
    cert = writer.get_extra_info("peercert") or {}
    names = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    return names == [PEER_NAME]


async def _to_tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Plain bytes into the tunnel as frames (4-byte length, then the bytes); the end of the stream as an empty
    frame, so that a half-close crosses TLS, which cannot carry one itself."""
    try:
        while data := await reader.read(CHUNK):
            writer.writelines((len(data).to_bytes(4, "big"), data))
            await writer.drain()
        writer.write(END_FRAME)
        await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError) as exc:
        logger.info("a connection broke towards the tunnel: %r", exc)
        return False
    return True


async def _from_tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    try:
        while True:
            size = int.from_bytes(await reader.readexactly(4), "big")
            if size == 0:
                if writer.can_write_eof():
                    writer.write_eof()
                return True
            if size > MAX_FRAME:
                logger.warning("a frame of %d bytes from the tunnel: more than %d, the connection is closed", size,
                               MAX_FRAME)
                return False
            writer.write(await reader.readexactly(size))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError) as exc:
        logger.info("a connection broke from the tunnel: %r", exc)
        return False


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
        await writer.wait_closed()


async def splice(plain: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 tunnel: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    """Carry bytes both ways between a plain connection and the tunnel until both directions have ended, or
    either breaks."""
    tasks = {asyncio.ensure_future(_to_tunnel(plain[0], tunnel[1])),
             asyncio.ensure_future(_from_tunnel(tunnel[0], plain[1]))}
    try:
        pending = tasks
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if not all(task.result() for task in done):
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                break
    finally:
        await _close(plain[1])
        await _close(tunnel[1])


class Gateway:
    """One node's gateway: inbound (TLS, from the other gateways, to its own services) and outbound (plain, on
    127.0.0.1 at the other nodes' ports)."""

    def __init__(self, plan: Plan, node: str, local_host: str = "127.0.0.1", listen_host: str = "127.0.0.1") -> None:
        self.plan = plan
        self.me = plan.member(node)
        self.local_host = local_host  # where this node's services listen
        self.listen_host = listen_host  # where the other nodes' services are offered on this node
        self.tls_server, self.tls_client = tls_contexts(plan)
        self.servers: list[asyncio.base_events.Server] = []
        self.carried = 0
        self.refused = 0

    async def start(self) -> None:
        self.servers.append(await asyncio.start_server(self._inbound, self.me.address, self.plan.port,
                                                       ssl=self.tls_server))
        for port, member in sorted(self.plan.remote(self.me.node).items()):
            self.servers.append(await asyncio.start_server(partial(self._outbound, member, port), self.listen_host,
                                                           port))
        logger.info("gateway of node %s: %s:%d for %d local ports; %d ports of %d other nodes on %s",
                    self.me.node, self.me.address, self.plan.port, len(self.me.ports),
                    len(self.plan.remote(self.me.node)), len(self.plan.members) - 1, self.listen_host)

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()

    async def _inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            if not peer_is_gateway(writer):
                raise ValueError(f"certificate is not {PEER_NAME!r}")
            line = await asyncio.wait_for(reader.readline(), GREETING_TIMEOUT_S)
            if not line.startswith(GREETING) or not line.endswith(b"\n"):
                raise ValueError(f"bad greeting {line[:40]!r}")
            text = line[len(GREETING):].strip()
            port = int(text) if text.isdigit() else -1
            if port not in self.me.ports:
                raise ValueError(f"port {text[:10]!r} is not a service of this node")
        except (TimeoutError, ValueError, ConnectionError, ssl.SSLError, OSError) as exc:
            self.refused += 1
            logger.warning("refused a connection from %s: %s", peer, exc)
            await _close(writer)
            return
        try:
            local = await asyncio.wait_for(asyncio.open_connection(self.local_host, port), CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            logger.warning("%s:%d does not answer (%s) for %s", self.local_host, port, exc, peer)
            await _close(writer)
            return
        self.carried += 1
        await splice(local, (reader, writer))

    async def _outbound(self, member: Member, port: int, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        try:
            far = await asyncio.wait_for(asyncio.open_connection(
                member.address, self.plan.port, ssl=self.tls_client,
                server_hostname=None if _is_ip(member.address) else member.address), CONNECT_TIMEOUT_S)
            if not peer_is_gateway(far[1]):
                await _close(far[1])
                raise ssl.SSLError(f"the gateway at {member.address} is not {PEER_NAME!r}")
            far[1].write(GREETING + str(port).encode() + b"\n")
            await far[1].drain()
        except (TimeoutError, OSError) as exc:
            logger.warning("node %s (%s:%d) does not answer for port %d: %s", member.node, member.address,
                           self.plan.port, port, exc)
            await _close(writer)
            return
        self.carried += 1
        await splice((reader, writer), far)


def _is_ip(address: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def check(plan: Plan, node: str) -> bool:
    """The health check: the node's gateway accepts a TLS connection on its address."""
    import socket

    me = plan.member(node)
    _, client = tls_contexts(plan)
    try:
        with socket.create_connection((me.address, plan.port), 3) as raw, \
                client.wrap_socket(raw, server_hostname=None if _is_ip(me.address) else me.address):
            return True
    except (OSError, ssl.SSLError):
        return False


async def _serve(plan: Plan, node: str) -> None:
    gateway = Gateway(plan, node)
    await gateway.start()
    await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="juno-dcs-gateway", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", type=Path, required=True, help="HOME/etc/gateway.yaml")
    parser.add_argument("--node", default=os.environ.get("JUNO_DCS_NODE"), help="this node's swarm ID")
    parser.add_argument("--check", action="store_true", help="exit 0 when this node's gateway answers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.node:
        parser.error("--node: required (or JUNO_DCS_NODE)")
    try:
        plan = load_plan(args.plan)
        plan.member(args.node)
    except ConfigError as exc:
        print(f"juno-dcs-gateway: {exc}", file=sys.stderr)
        return 2
    if args.check:
        return 0 if check(plan, args.node) else 1
    asyncio.run(_serve(plan, args.node))
    return 0


if __name__ == "__main__":
    sys.exit(main())
