"""Health checks of the grid's services, each `check_*() -> Health`."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
import requests
import stomp
import stomp.exception

from juno_dcs.errors import ServiceError
from juno_dcs.grid import database, kafka
from juno_dcs.grid.home import GridState
from juno_dcs.grid.ports import port_open
from juno_probes.programs import STALE_S, beats_of, stale_daemons


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_rucio(url: str, timeout: float = 3.0) -> Health:
    try:
        reply = requests.get(f"{url}/ping", timeout=timeout)
    except requests.RequestException as exc:
        return Health(False, f"no answer: {exc.__class__.__name__}")
    if reply.status_code != 200:
        return Health(False, f"/ping answered HTTP {reply.status_code}")
    try:
        version = reply.json().get("version", "?")
    except ValueError:
        return Health(False, "/ping answered something that is not JSON")
    return Health(True, f"Rucio {version}")


def check_postgresql(state: GridState) -> Health:
    try:
        with psycopg.connect(database.grid_url(state), connect_timeout=3) as conn:
            row = conn.execute("SELECT count(*) FROM rucio.rses WHERE deleted = false").fetchone()
    except psycopg.Error as exc:
        return Health(False, f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0]}")
    return Health(True, f"database {state.db_name}, {row[0] if row else 0} RSEs")


def stale_heartbeats(state: GridState, stale_s: float = STALE_S) -> dict[str, str]:
    """`rucio-<daemon>` -> why, for each Rucio daemon whose newest heartbeat (Rucio's heartbeats table) is older
    than `stale_s`: it runs, but is stuck in a cycle or cannot reach its database. Empty when the database does not
    answer (check_postgresql says so)."""
    try:
        with psycopg.connect(database.grid_url(state), connect_timeout=3) as conn:
            rows = conn.execute("SELECT readable, updated_at FROM rucio.heartbeats").fetchall()
            now = conn.execute("SELECT now() AT TIME ZONE 'UTC'").fetchone()
    except psycopg.Error:
        return {}
    if now is None:
        return {}
    stale = stale_daemons(beats_of({"readable": r[0], "updated_at": r[1]} for r in rows),
                          now[0].replace(tzinfo=dt.UTC), stale_s)
    return {f"rucio-{daemon}": f"no heartbeat for {age:.0f} s" for daemon, age in stale.items()}


def check_activemq(state: GridState, timeout: float = 3.0) -> Health:
    conn = stomp.Connection12([("127.0.0.1", state.ports.activemq_stomp)], timeout=timeout)
    try:
        conn.connect("hermes", state.activemq_password, wait=True, with_connect_command=True)
    except (stomp.exception.StompException, OSError) as exc:
        return Health(False, f"STOMP connect failed: {exc.__class__.__name__} {exc}")
    finally:
        if conn.is_connected():
            conn.disconnect()
    return Health(True, "STOMP login accepted")


def check_ports(ports: dict[str, int], tls_ca: Path | None = None, timeout: float = 3.0) -> Health:
    """Every named port accepts TCP connections on 127.0.0.1; with `tls_ca`, each also completes a TLS handshake
    with a certificate of that CA. (On a grid spread over Swarm nodes a remote service's port is its node
    gateway's, which accepts a connection even while that node is gone: only the handshake shows the service.)"""
    down = [name for name, port in ports.items() if not port_open(port)]
    if down:
        return Health(False, f"not listening: {', '.join(down)}")
    if tls_ca is not None:
        context = ssl.create_default_context(cafile=str(tls_ca))
        context.check_hostname = False
        silent = []
        for name, port in ports.items():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout) as raw, context.wrap_socket(raw):
                    pass
            except (OSError, ssl.SSLError):
                silent.append(name)
        if silent:
            return Health(False, f"no TLS answer: {', '.join(silent)}")
    return Health(True, f"{len(ports)} listening")


def check_fts(url: str, ca_file: Path, timeout: float = 3.0) -> Health:
    """The transfer service answers `GET /` (HTTPS, checked against the grid CA)."""
    try:
        reply = requests.get(f"{url}/", timeout=timeout, verify=str(ca_file))
        api = reply.json()["api"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        return Health(False, f"no answer: {exc.__class__.__name__}")
    return Health(True, f"FTS3 REST API {api['major']}.{api['minor']}.{api['patch']}")


def check_kafka(state: GridState, timeout: float = 3.0) -> Health:
    """ZooKeeper answers `ruok` and the broker answers a metadata request naming itself."""
    problem = kafka.zookeeper_answer(state.ports.zookeeper, timeout)
    if problem is not None:
        return Health(False, f"ZooKeeper: {problem}")
    if not port_open(state.ports.kafka):  # spares kafka-python's retry logging while the broker starts
        return Health(False, f"broker not listening on port {state.ports.kafka}")
    try:
        brokers = kafka.broker_ids(kafka.kafka_settings(state), timeout)
    except ServiceError as exc:
        return Health(False, str(exc))
    if not brokers:
        return Health(False, "the broker's metadata names no broker")
    return Health(True, f"Kafka 0.9 broker {','.join(map(str, brokers))}, ZooKeeper imok")
