"""The Rucio replica locator against the running dev grid's Rucio (skipped when that grid is not there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from juno_dcs.wms.brokerage import RucioReplicaLocator

DEV_GRID = Path(os.environ.get("JUNO_WMS_DEV_GRID", "/tmp/gdevroot/g"))
CLIENT_CFG = DEV_GRID / "etc" / "clients" / "root.cfg"


@pytest.fixture
def locator(monkeypatch: pytest.MonkeyPatch) -> RucioReplicaLocator:
    if not CLIENT_CFG.exists():
        pytest.skip(f"no dev grid at {DEV_GRID}")
    try:
        requests.get("http://127.0.0.1:27000/ping", timeout=5)
    except requests.ConnectionError:
        pytest.skip("the dev grid's Rucio does not answer")
    monkeypatch.setenv("RUCIO_CONFIG", str(CLIENT_CFG))
    return RucioReplicaLocator(CLIENT_CFG)


@pytest.mark.grid
def test_rucio_locator_finds_a_replica(locator: RucioReplicaLocator) -> None:
    client = locator.client
    found = None
    for scope in client.list_scopes():
        for did in client.list_dids(scope, {"name": "*"}, did_type="file"):
            name = did if isinstance(did, str) else did["name"]
            reps = list(client.list_replicas([{"scope": scope, "name": name}]))
            if reps and reps[0].get("rses"):
                found = (f"{scope}:{name}", set(reps[0]["rses"]))
                break
        if found:
            break
    if found is None:
        pytest.skip("the dev grid holds no file with a replica")
    did, rses = found
    located = locator.locate([did, "user.nobody:does-not-exist"])
    assert located[did] == rses
    assert "user.nobody:does-not-exist" not in located or not located["user.nobody:does-not-exist"]
