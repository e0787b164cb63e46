"""The raw blocks' summary on the session's grid (juno_dcs.ingest.summary): `raw summarize` keeps it, `raw status`
over every day and the dashboard's blocks panel read the settled blocks from it and ask Rucio about the rest, and a
settled block whose rules change is asked again at the next pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from benchmarks.scale_shape import new_block

from tests.conftest import BIN, Grid
from tests.e2e.shell import wait_for

pytestmark = [pytest.mark.grid]

ROOT = Path(__file__).resolve().parents[2]


def _status_all(grid: Grid) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in json.loads(grid.juno_dcs("raw", "status", "--json").stdout)}


def _summarize(grid: Grid) -> dict[str, Any]:
    return json.loads(grid.juno_dcs("raw", "summarize", "--json").stdout)  # type: ignore[no-any-return]


def test_settled_blocks_come_from_the_summary_and_a_changed_rule_is_seen(grid: Grid) -> None:
    from juno_dcs.grid.home import GridHome
    from juno_dcs.grid.launcher import root_client

    stream = f"sum{uuid.uuid4().hex[:6]}"
    # a closed 1,000-file block with its replicas at IHEP_DISK, registered by Rucio's own bulk route
    env = {**os.environ, "RUCIO_CONFIG": str(grid.home / "etc" / "rucio.cfg")}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale_fill.py"), "--new-block", stream], env=env,
                   check=True, capture_output=True, text=True, timeout=300)
    closed = new_block(stream).name
    home = GridHome(grid.home)
    client = root_client(home, home.load_state())
    day = date.fromisoformat(closed.split(".")[1]) + timedelta(days=1)
    still_open = f"block.{day:%Y%m%d}.{stream}"  # the next day of the same stream, open and empty
    client.add_dataset("raw", still_open)

    # the dashboard's collector, one cycle: it brings the summary up to date with the rest of its samples
    # (the dashboard's own collector may have taken the closed block already; the open one is due at every pass)
    config = grid.home / "etc" / "dashboard.yaml"
    cycle = subprocess.run([str(BIN / "juno-dashboard"), "collect", "--config", str(config), "--run-once"],
                           env=grid.env(), capture_output=True, text=True, timeout=300, check=False)
    # (the user's environment trusts no CA for the transfer service's samples: only the blocks are asked about)
    report = json.loads(cycle.stdout)
    assert "blocks" not in report["errors"], cycle.stdout + cycle.stderr
    assert report["written"]["blocks"] >= 1, cycle.stdout
    again = _summarize(grid)
    assert again["left"] == 0, again
    assert closed not in again["refreshed_blocks"], "a settled block with the same rules is not asked again"
    assert still_open in again["refreshed_blocks"], "an open block is asked at every pass"

    every = _status_all(grid)
    live = {b["name"]: b for b in json.loads(grid.juno_dcs("raw", "status", "--stream", stream, "--json").stdout)}
    assert every[closed]["checked_at"] is not None, "settled: read from the summary"
    assert every[still_open]["checked_at"] is None, "open: asked now"
    assert every[still_open]["state"] == "open"
    assert live[closed]["checked_at"] is None
    assert {**every[closed], "checked_at": None} == live[closed], "the summary holds what Rucio says"
    assert every[closed]["files"] == 1000
    assert every[closed]["sites"]["IHEP"]["replicas"] == 1000

    # a rule on the settled block changes its rules' key: the next pass asks again, and the summary shows the rule
    [rule_id] = client.add_replication_rule([{"scope": "raw", "name": closed}], 1, "IHEP_DISK", account="root")
    try:
        wait_for("the rule at IHEP_DISK is OK", lambda: client.get_replication_rule(rule_id)["state"],
                 lambda state: state == "OK", 120, every=2)
        done = _summarize(grid)
        assert closed in done["refreshed_blocks"], done
        block = _status_all(grid)[closed]
        assert block["checked_at"] is not None
        assert block["sites"]["IHEP"]["rules"] == ["OK"], block

        # the dashboard's blocks panel: the same block, settled, with when it was checked
        url = grid.status()["services"]["dashboard"]  # type: ignore[index]

        def panel_row() -> dict[str, Any] | None:
            with requests.get(f"{url}api/blocks", timeout=60) as reply:
                reply.raise_for_status()
                rows = [r for r in reply.json()["blocks"] if r["name"] == closed]
            return rows[0] if rows and rows[0]["checked_at"] and rows[0]["rses"] else None

        row = wait_for("the blocks panel shows the settled block from the summary", panel_row,
                       lambda row: row is not None, 60, every=2)
        assert row is not None
        assert {r["rse"]: r["files"] for r in row["rses"]}["IHEP_DISK"] == 1000
    finally:
        client.delete_replication_rule(rule_id, purge_replicas=False)
