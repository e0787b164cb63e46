"""The Rucio replica locator against the test session's grid's Rucio, with a file of its own uploaded first."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import requests

from juno_dcs.wms.brokerage import RucioReplicaLocator
from tests.conftest import Grid


@pytest.fixture
def locator(grid: Grid, monkeypatch: pytest.MonkeyPatch) -> RucioReplicaLocator:
    from rucio.common.config import clean_cached_config

    client_cfg = grid.home / "etc" / "clients" / "root.cfg"
    assert client_cfg.is_file(), f"no root client configuration in {grid.home}"
    requests.get(f"http://127.0.0.1:{grid.base_port}/ping", timeout=5).raise_for_status()
    monkeypatch.setenv("RUCIO_CONFIG", str(client_cfg))  # the locator sets it too: restored after the test
    clean_cached_config()  # another test of this process may have read another configuration
    return RucioReplicaLocator(client_cfg)


def test_rucio_locator_finds_a_replica(grid: Grid, locator: RucioReplicaLocator, tmp_path: Path) -> None:
    name = f"wmslocator.{uuid.uuid4().hex[:12]}.txt"
    (tmp_path / name).write_bytes(os.urandom(1000))
    up = grid.rucio("upload", "--rse", "IHEP_DISK", "--scope", "user.alice", str(tmp_path / name), account="alice")
    assert f"Successfully uploaded file {name}" in up.stderr, up.stdout + up.stderr
    client = locator.client
    reps = list(client.list_replicas([{"scope": "user.alice", "name": name}]))
    assert reps, f"user.alice:{name} has no replica after its upload"
    did, rses = f"user.alice:{name}", set(reps[0]["rses"])
    assert rses == {"IHEP_DISK"}
    located = locator.locate([did, "user.nobody:does-not-exist"])
    assert located[did] == rses
    assert "user.nobody:does-not-exist" not in located or not located["user.nobody:does-not-exist"]
