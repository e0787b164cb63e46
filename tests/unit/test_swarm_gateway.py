"""The node gateway (swarm/gateway.py) on real sockets and real TLS: two gateways on the loopback, each node's
services on an address of its own (127.0.0.1 is node A's, 127.0.0.2 node B's), the other node's ports offered on
127.0.0.3. Bytes go both ways intact; what is not a gateway of the grid, or asks for a port that is not a service of
the node, is refused; a bad plan file is named with its field."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from juno_dcs.errors import ConfigError
from juno_dcs.grid import pki
from juno_dcs.swarm import gateway as gw

_HANDED_OUT: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on every loopback address the tests use: a gateway offers the other node's ports on another
    address than the one they are picked on, and a port taken there by anything else would take its clients. A
    port is handed out once per process: the kernel may offer a just-closed port again, and two roles of one plan
    on one port make the plan invalid."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT and all(_bindable(f"127.0.0.{i}", port) for i in range(1, 5)):
            _HANDED_OUT.add(port)
            return port


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    ca, other_ca = root / "ca", root / "other-ca"
    pki.ensure_ca(ca)
    pki.ensure_ca(other_ca)
    out = {"ca": ca / pki.CA_CERT}
    for name, issuer, cn in (("gw", ca, gw.PEER_NAME), ("host", ca, "localhost"), ("stranger", other_ca, gw.PEER_NAME)):
        pki.issue_host_cert(issuer, root / f"{name}.pem", root / f"{name}.key", names=(cn,))
        out[name], out[f"{name}_key"] = root / f"{name}.pem", root / f"{name}.key"
    return out


def plan_of(certs: dict[str, Path], a_ports: list[int], b_ports: list[int], port: int) -> gw.Plan:
    return gw.make_plan(port, certs["gw"], certs["gw_key"], certs["ca"], {"A": "127.0.0.1", "B": "127.0.0.2"},
                        {"A": ["IHEP"], "B": ["CNAF"]}, {"IHEP": a_ports, "CNAF": b_ports})


async def echo_server(host: str, port: int) -> asyncio.base_events.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        digest = hashlib.sha256()
        while data := await reader.read(1 << 16):
            digest.update(data)
            writer.write(data)
            await writer.drain()
        writer.write(digest.hexdigest().encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, host, port)


class Pair:
    def __init__(self, certs: dict[str, Path]) -> None:
        self.service_b = free_port("127.0.0.2")
        self.hidden_b = free_port("127.0.0.2")  # listens on B but is not one of its services
        self.service_a = free_port("127.0.0.1")
        self.plan = plan_of(certs, [self.service_a], [self.service_b], free_port())
        self.a = gw.Gateway(self.plan, "A", local_host="127.0.0.1", listen_host="127.0.0.3")
        self.b = gw.Gateway(self.plan, "B", local_host="127.0.0.2", listen_host="127.0.0.4")


def with_pair(certs: dict[str, Path], body: Callable[[Pair], Awaitable[None]]) -> None:
    """Run `body` with both gateways and the services behind them up (pytest runs no event loop of its own)."""
    async def run() -> None:
        p = Pair(certs)
        servers = [await echo_server("127.0.0.2", p.service_b), await echo_server("127.0.0.2", p.hidden_b),
                   await echo_server("127.0.0.1", p.service_a)]
        await p.a.start()
        await p.b.start()
        try:
            await body(p)
        finally:
            await p.a.stop()
            await p.b.stop()
            for s in servers:
                s.close()

    asyncio.run(run())


async def roundtrip(host: str, port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return data


def test_bytes_cross_both_ways_intact(certs: dict[str, Path]) -> None:
    async def body(pair: Pair) -> None:
        payload = os.urandom(3 * 1024 * 1024 + 17)
        got = await roundtrip("127.0.0.3", pair.service_b, payload)  # A's clients reach B's service
        assert got[:len(payload)] == payload
        assert got[len(payload):] == hashlib.sha256(payload).hexdigest().encode()
        back = await roundtrip("127.0.0.4", pair.service_a, b"from B")  # and B's reach A's
        assert back.startswith(b"from B")

    with_pair(certs, body)


def test_many_connections_at_once(certs: dict[str, Path]) -> None:
    async def body(pair: Pair) -> None:
        payloads = [os.urandom(200_000 + i) for i in range(20)]
        answers = await asyncio.gather(*(roundtrip("127.0.0.3", pair.service_b, p) for p in payloads))
        assert [a[:len(p)] for a, p in zip(answers, payloads, strict=True)] == payloads
        assert pair.b.carried >= 20

    with_pair(certs, body)


def unframe(data: bytes) -> bytes:
    """The bytes of a tunnel's frames, up to the end frame."""
    out, at = b"", 0
    while at + 4 <= len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        if size == 0:
            break
        out, at = out + data[at + 4:at + 4 + size], at + 4 + size
    return out


async def talk_tls(pair: Pair, cert: Path, key: Path, ca: Path, greeting: bytes) -> bytes:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(cert), str(key))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.2", pair.plan.port, ssl=ctx)
        writer.write(greeting + len(b"ping").to_bytes(4, "big") + b"ping" + gw.END_FRAME)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return unframe(data)
    except (ssl.SSLError, ConnectionError):
        return b"<refused by TLS>"


def test_a_port_that_is_no_service_of_the_node_is_refused(certs: dict[str, Path]) -> None:
    async def body(pair: Pair) -> None:
        ask = gw.GREETING + f"{pair.service_b}\n".encode()
        ok = await talk_tls(pair, certs["gw"], certs["gw_key"], certs["ca"], ask)
        assert ok.startswith(b"ping")
        for greeting in (gw.GREETING + f"{pair.hidden_b}\n".encode(), gw.GREETING + b"22\n", gw.GREETING + b"x\n",
                         b"GET / HTTP/1.1\n", gw.GREETING + b"-1\n"):
            assert await talk_tls(pair, certs["gw"], certs["gw_key"], certs["ca"], greeting) == b"", greeting
        assert pair.b.refused == 5

    with_pair(certs, body)


def test_only_the_grids_gateways_get_in(certs: dict[str, Path]) -> None:
    async def body(pair: Pair) -> None:
        greeting = gw.GREETING + f"{pair.service_b}\n".encode()
        # a certificate of the grid's CA that is not a gateway's (the services' host certificate)
        assert await talk_tls(pair, certs["host"], certs["host_key"], certs["ca"], greeting) == b""
        # a gateway's name signed by another CA; no certificate at all (TLS 1.3 refuses either after the client's
        # side of the handshake: the client sees an alert or the end of the connection)
        assert await talk_tls(pair, certs["stranger"], certs["stranger_key"], certs["ca"], greeting) in (
            b"", b"<refused by TLS>")
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certs["ca"]))
        ctx.check_hostname = False
        try:
            reader, writer = await asyncio.open_connection("127.0.0.2", pair.plan.port, ssl=ctx)
            writer.write(greeting + len(b"ping").to_bytes(4, "big") + b"ping" + gw.END_FRAME)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)
        except (ssl.SSLError, ConnectionError):
            answer = b""
        assert answer == b""
        assert pair.b.carried == 0

    with_pair(certs, body)


def test_a_node_that_does_not_answer_closes_the_client(certs: dict[str, Path]) -> None:
    plan = plan_of(certs, [free_port()], [free_port("127.0.0.2")], free_port())

    async def run() -> bytes:
        a = gw.Gateway(plan, "A", listen_host="127.0.0.3")  # B's gateway never starts
        await a.start()
        try:
            return await roundtrip("127.0.0.3", plan.members[1].ports[0], b"hello")
        finally:
            await a.stop()

    assert asyncio.run(run()) == b""


def test_health_check(certs: dict[str, Path]) -> None:
    plan = plan_of(certs, [free_port()], [free_port("127.0.0.2")], free_port())
    assert not gw.check(plan, "A")

    async def up_and_check() -> bool:
        a = gw.Gateway(plan, "A", listen_host="127.0.0.3")
        await a.start()
        try:
            return await asyncio.to_thread(gw.check, plan, "A")
        finally:
            await a.stop()

    assert asyncio.run(up_and_check())


def test_plan_round_trip_and_conflicts(certs: dict[str, Path], tmp_path: Path) -> None:
    plan = plan_of(certs, [20010, 20040], [20011, 20041], 20034)
    assert plan.remote("A") == {20011: plan.member("B"), 20041: plan.member("B")}
    path = tmp_path / "gateway.yaml"
    import yaml

    path.write_text(yaml.safe_dump(plan.as_dict()))
    assert gw.load_plan(path) == plan
    with pytest.raises(ConfigError, match="port 20010 is served on node A and on node B"):
        plan_of(certs, [20010], [20010], 20034)
    with pytest.raises(ConfigError, match="gateway's port 20010 is also a service's port"):
        plan_of(certs, [20010], [20011], 20010)
    with pytest.raises(ConfigError, match="node 'C' is not in the gateway plan"):
        plan.member("C")


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2", "cannot read the gateway plan"),
    ("- a\n- b\n", "must be a mapping"),
    ("port: 1\ncert: c\nkey: k\nca: a\n", "'nodes' must be a list"),
    ("port: x\ncert: c\nkey: k\nca: a\nnodes: []\n", "'port' must be a int"),
    ("port: 1\ncert: c\nkey: k\nca: a\nnodes: [3]\n", r"nodes\[0\]: must be a mapping"),
    ("port: 1\ncert: c\nkey: k\nca: a\nnodes: [{node: A, address: x, sites: [], ports: [0]}]\n",
     r"nodes\[0\]: 'ports' must be TCP ports"),
    ("port: 1\ncert: c\nkey: k\nca: a\nnodes: [{node: A, address: x, sites: [], ports: [true]}]\n",
     r"nodes\[0\]: 'ports' must be TCP ports"),
    ("port: 1\ncert: c\nkey: k\nca: a\nnodes: [{node: 5, address: x, sites: [], ports: []}]\n",
     r"nodes\[0\]: 'node' must be a str"),
])
def test_bad_plans_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        gw.load_plan(path)
    assert str(path) in str(info.value)


def test_command_line_refuses_an_unknown_node(certs: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(plan_of(certs, [20010], [20011], 20034).as_dict()))
    assert gw.main(["--plan", str(path), "--node", "Z"]) == 2
    assert "node 'Z' is not in the gateway plan" in capsys.readouterr().err


def test_the_storage_check_tells_a_gateway_to_a_gone_node_from_a_live_service(certs: dict[str, Path]) -> None:
    from juno_dcs.grid.health import check_ports

    plan = plan_of(certs, [free_port()], [free_port("127.0.0.2")], free_port())
    remote = plan.members[1].ports[0]

    async def run() -> tuple[bool, str, bool]:
        a = gw.Gateway(plan, "A", listen_host="127.0.0.1")  # B's port offered on 127.0.0.1; B's gateway is gone
        await a.start()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(str(certs["host"]), str(certs["host_key"]))
        live_port = free_port()
        live = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", live_port, ssl=tls)
        try:
            gone = await asyncio.to_thread(check_ports, {"CNAF_DISK": remote}, certs["ca"])
            plain = await asyncio.to_thread(check_ports, {"CNAF_DISK": remote})
            alive = await asyncio.to_thread(check_ports, {"IHEP_DISK": live_port}, certs["ca"])
        finally:
            live.close()
            await a.stop()
        return gone.ok or not alive.ok, gone.detail, plain.ok

    masked, detail, plain_ok = asyncio.run(run())
    assert not masked
    assert detail == "no TLS answer: CNAF_DISK"
    assert plain_ok  # a bare TCP connect cannot tell
