"""Condition data in the running grid: `up` made the MariaDB database, the service and one Squid per data centre;
a tag built with `juno-dcs conditions --home` is read back through the grid's IHEP Squid byte for byte, the second
read is a Squid hit, and the Squid of another data centre serves it too."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from juno_dcs.conditions.client import ConditionsClient
from tests.conftest import Grid


def test_status_names_the_conditions_service_and_a_squid_per_data_centre(grid: Grid) -> None:
    status = grid.status()
    services = status["services"]
    assert isinstance(services, dict)
    assert {f"squid-{s}" for s in ("IHEP", "CNAF", "JINR", "IN2P3", "MSU")} <= set(services)
    assert status["health"]["conditions"]["ok"], status["health"]  # type: ignore[index]
    processes = status["processes"]
    assert isinstance(processes, dict)
    assert processes["conditions"]["state"] == "RUNNING"
    assert all(processes[f"squid-{s}"]["state"] == "RUNNING" for s in ("IHEP", "CNAF"))


def test_a_tag_made_with_the_admin_commands_is_read_through_the_grid_squids(grid: Grid, tmp_path: Path) -> None:
    tag = f"JUNO-GRID-{tmp_path.name[-6:].upper().replace('_', '')}"
    gains = {"channel": [0, 1, 2], "gain": [1.0, 1.02, 0.98], "sigma": [0.1, 0.1, 0.12]}
    payload = tmp_path / "gains.json"
    payload.write_text(json.dumps(gains))
    grid.juno_dcs("conditions", "create-tag", tag, "--description", "grid test")
    grid.juno_dcs("conditions", "add", tag, "pmt_gains", "1000-1999", str(payload), "--type", "pmt_gains")
    grid.juno_dcs("conditions", "lock", tag)
    services = grid.status()["services"]
    assert isinstance(services, dict)
    ihep, cnaf, server = services["squid-IHEP"], services["squid-CNAF"], services["conditions"]

    client = ConditionsClient(proxies=[ihep], servers=[server])
    ref = client.refs(tag, 1500)["pmt_gains"]
    assert client.payload_bytes(ref.payload_hash) == payload.read_bytes()  # byte for byte

    url = f"{ihep}/v1/payloads/{ref.payload_hash}"
    requests.get(url, timeout=10)
    second = requests.get(url, timeout=10)
    assert "HIT" in second.headers.get("X-Cache", ""), second.headers
    at_cnaf = requests.get(f"{cnaf}/v1/payloads/{ref.payload_hash}", timeout=10)
    assert at_cnaf.status_code == 200
    assert at_cnaf.content == payload.read_bytes()
    refused = grid.juno_dcs("conditions", "add", tag, "pmt_gains", "2000-2999", str(payload), "--type",
                            "pmt_gains", check=False)
    assert refused.returncode != 0
    assert "locked" in refused.stderr
