"""The raw share applied to real daily blocks in the grid's Rucio: 30 consecutive days, then one block that
really moves, disk first and tape after, with the stock CLI and `juno-dcs placement`."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from juno_dcs.grid.home import GridHome
from juno_dcs.grid.launcher import root_client
from juno_dcs.packaged import data_file
from juno_dcs.placement.applier import apply
from juno_dcs.placement.loader import load_policies
from juno_dcs.placement.planner import plan
from juno_dcs.placement.rse_expr import evaluate
from juno_dcs.topology import load_topology
from juno_rucio_policy.paths import path_for
from tests.conftest import Grid, run
from tests.integration import juno_names

POLICIES = load_policies(data_file("placement"))
TOPOLOGY = load_topology(data_file("topology.yaml"))
FIRST_DAY = dt.date(2026, 10, 1)


def _rule_key(rule: dict[str, Any] | Any) -> tuple[Any, ...]:
    get = rule.get if isinstance(rule, dict) else lambda k: getattr(rule, k)
    return (get("account"), get("rse_expression"), get("copies"), get("source_replica_expression"),
            get("activity"), get("grouping"))


def test_thirty_days_of_blocks_get_the_share(grid: Grid) -> None:
    home = GridHome(grid.home)
    state = home.load_state()
    clients = {a: root_client(home, state, a) for a in ("rawdata", "root")}
    stream = juno_names.stream()
    blocks = [f"raw:block.{FIRST_DAY + dt.timedelta(days=i):%Y%m%d}.{stream}" for i in range(30)]
    for did in blocks:
        clients["rawdata"].add_dataset("raw", did.split(":")[1])

    first = [apply(clients["rawdata"], did, POLICIES, TOPOLOGY, client_for=clients.__getitem__) for did in blocks]
    # open blocks: disk copies (and IHEP's tape, fed by the disk that receives the data) now, T1 tapes wait
    assert all("block still open" in (o.reason or "") for r in first for o in r.waiting)
    assert {o.rule.rse_expression for r in first for o in r.waiting} <= {"CNAF_TAPE", "JINR_TAPE", "IN2P3_TAPE"}
    for did in blocks:
        clients["rawdata"].close("raw", did.split(":")[1])
    second = [apply(clients["rawdata"], did, POLICIES, TOPOLOGY, client_for=clients.__getitem__) for did in blocks]
    assert all(r.done for r in second), [o for r in second for o in r.waiting]
    third = [apply(clients["rawdata"], did, POLICIES, TOPOLOGY, client_for=clients.__getitem__) for did in blocks]
    assert sum(len(r.created) for r in third) == 0  # applying again creates nothing

    per_rse: Counter[str] = Counter()
    for did in blocks:
        scope, name = did.split(":")
        in_rucio = list(clients["rawdata"].list_did_rules(scope, name))
        planned = plan(did, POLICIES, TOPOLOGY)
        assert sorted(map(_rule_key, in_rucio)) == sorted(map(_rule_key, planned)), did
        lifetimes = {r["rse_expression"]: r["expires_at"] for r in in_rucio}
        assert [lifetimes[r] for r in ("IHEP_DISK", "IHEP_TAPE", "CNAF_TAPE")] == [None, None, None]
        assert lifetimes["CNAF_DISK"] is not None  # T1 disk copies expire, tapes stay
        per_rse.update(r["rse_expression"] for r in in_rucio)
    assert per_rse["IN2P3_DISK"] == per_rse["IN2P3_TAPE"] == 10
    for rse in ("IHEP_DISK", "IHEP_TAPE", "CNAF_DISK", "CNAF_TAPE", "JINR_DISK", "JINR_TAPE"):
        assert per_rse[rse] == 30, per_rse


@pytest.mark.slow  # make test sees a day reach the T1 disks, then tapes, file by file (e2e/test_data_taking_day.py)
def test_a_block_goes_to_t1_disks_then_tapes(grid: Grid, tmp_path: Path) -> None:
    stream = juno_names.stream()
    day = FIRST_DAY  # 2026-10-01 is an IN2P3 day (its ordinal is a multiple of 3)
    block = f"raw:{juno_names.block(stream, day)}"
    names = []
    for seq in (1, 2):
        path = tmp_path / juno_names.raw_file(seq, run=5151, stream_name=stream, day=day)
        path.write_bytes(os.urandom(128 * 1024))
        names.append(path.name)
    grid.rucio("upload", "--rse", "IHEP_DISK", "--scope", "raw", *[str(tmp_path / n) for n in names],
               account="rawdata")
    grid.rucio("did", "add", "--type", "dataset", block, account="rawdata")
    grid.rucio("did", "content", "add", "--to-did", block, *[f"raw:{n}" for n in names], account="rawdata")

    planned = json.loads(grid.juno_dcs("placement", "plan", block, "--json").stdout)
    assert {r["rse_expression"] for r in planned} == {
        "IHEP_DISK", "IHEP_TAPE", "CNAF_DISK", "CNAF_TAPE", "JINR_DISK", "JINR_TAPE", "IN2P3_DISK", "IN2P3_TAPE"}
    waiting = grid.juno_dcs("placement", "apply", block, "--json", check=False)
    assert waiting.returncode == 3, waiting.stderr  # the T1 tapes wait for the closed block
    report = json.loads(waiting.stdout)
    assert {r["rule"]["rse_expression"] for r in report["rules"] if r["status"] == "waiting"} == {
        "CNAF_TAPE", "JINR_TAPE", "IN2P3_TAPE"}
    grid.rucio("did", "update", "--close", block, account="rawdata")
    done = grid.juno_dcs("placement", "apply", block, "--json", "--wait", "240")
    report = json.loads(done.stdout)
    assert report["done"], report
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        rules = [json.loads(line) for line in _rules_json(grid, block)]
        if all(r["state"] == "OK" for r in rules):
            break
        time.sleep(3)
    assert all(r["state"] == "OK" for r in rules), rules
    for rse in ("IHEP_TAPE", "CNAF_DISK", "CNAF_TAPE", "JINR_DISK", "JINR_TAPE", "IN2P3_DISK", "IN2P3_TAPE"):
        for name in names:
            assert (grid.rse_dir(rse) / path_for("raw", name)).is_file(), (rse, name)
    again = json.loads(grid.juno_dcs("placement", "apply", block, "--json").stdout)
    assert {r["status"] for r in again["rules"]} == {"existing"}


def _rules_json(grid: Grid, did: str) -> list[str]:
    code = ("import json, os, sys; from rucio.client import Client; c = Client(); "
            "scope, name = sys.argv[1].split(':'); "
            "[print(json.dumps({'rse': r['rse_expression'], 'state': r['state']})) "
            "for r in c.list_did_rules(scope, name)]")
    env = grid.env("rawdata")
    proc = run([str(Path(env["PATH"].split(":")[0]) / "python"), "-c", code, did], env=env)
    return proc.stdout.splitlines()


@pytest.mark.parametrize("expression", [
    "tier=1&type=DISK", "type=TAPE", "site=IHEP", "IHEP_DISK|CNAF_DISK&type=TAPE", "IHEP_DISK|(CNAF_DISK&type=TAPE)",
    "*\\type=TAPE\\tier=1", "tier<1", "country=RU&type=DISK", "(site=IN2P3|site=CNAF)\\(type=TAPE)",
])
def test_offline_expressions_agree_with_rucio(grid: Grid, expression: str) -> None:
    """`juno-dcs placement check` evaluates RSE expressions without a server; the grid's Rucio agrees."""
    home = GridHome(grid.home)
    client = root_client(home, home.load_state(), "root")
    from rucio.common.exception import InvalidRSEExpression

    try:
        in_rucio = sorted(r["rse"] for r in client.list_rses(rse_expression=expression))
    except InvalidRSEExpression:  # Rucio's answer to an expression that selects nothing
        in_rucio = []
    assert evaluate(expression, TOPOLOGY) == in_rucio
