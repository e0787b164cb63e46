"""JUNO's JSUB examples as they are written, run by alice on the grid's pilots: the detsim -> elecsim -> calib ->
rec chain under splitByEvent (etc/jsub/jsub_juno_chain.yaml, unmodified), then elecsim -> calib -> rec on an
existing dataset of detsim files (etc/jsub/simrec_dataset.yaml, unmodified: its dataset is the one she makes from
the chain's detsim outputs). Every sub-job finishes, the outputs are in her scope with the names JSUB gives them, and
each file's metadata shows the options its step ran with."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import uproot

from tests.conftest import Grid
from tests.e2e.shell import Shell, downloaded, table, wait_for

pytestmark = [pytest.mark.grid, pytest.mark.e2e, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "etc" / "jsub"


def create(alice: Shell, task_file: Path) -> tuple[int, str, str, int]:
    """`jsub create --submit`: (task id, uid, output dataset DID, sub-jobs)."""
    out = alice.out("jsub", "create", str(task_file), "--submit")
    found = re.search(r"task (\d+) created: (\S+), (\d+) sub-job\(s\), backend dispatcher, outputs "
                      r"(user\.\w+:\S+)", out)
    assert found, out
    return int(found[1]), found[2], found[4], int(found[3])


def finished(alice: Shell, task_id: int, timeout: float = 900) -> dict[str, Any]:
    def status() -> dict[str, Any]:
        return dict(alice.json("jsub", "status", str(task_id), "--jobs", "--json"))

    return wait_for(f"jsub task {task_id} over", status,
                    lambda s: set(s["by_state"]) <= {"finished", "failed", "cancelled"}, timeout)


def meta(path: Path) -> dict[str, Any]:
    with uproot.open(path) as f:
        return dict(json.loads(str(f["meta"])))


def contents(alice: Shell, dataset: str) -> set[str]:
    return {row["SCOPE:NAME"].split(":", 1)[1]
            for row in table(alice.out("rucio", "did", "content", "list", dataset))}


@pytest.mark.timeout(1800)
def test_the_chain_example_then_the_dataset_example_on_its_detsim_files(grid: Grid, tmp_path: Path) -> None:
    # the global tag the example's calib step reads (its env: JUNO_GLOBAL_TAG), published by the conditions manager
    manager = Shell(grid, "production", tmp_path / "manager")
    assert manager.json("juno-payload", "make-conditions", "--tag", "GT-J25a", "--runs", "1-999999")["state"] == \
        "locked"  # made, or found made
    alice = Shell(grid, "alice", tmp_path / "alice", extra_env={"JSUB_HOME": str(tmp_path / "alice" / "jsub")})
    chain = alice.cwd / "jsub_juno_chain.yaml"
    shutil.copy(EXAMPLES / "jsub_juno_chain.yaml", chain)
    task_id, uid, dataset, subjobs = create(alice, chain)
    assert (dataset, subjobs) == ("user.alice:jsub_tests.juno_sim_chain", 2)  # 100 events, 50 per sub-job
    state = finished(alice, task_id)
    assert state["by_state"] == {"finished": 2}, state

    steps = ("detsim.root", "detsim_user.root", "elecsim.root", "calib.root", "rec.root")
    names = contents(alice, dataset)
    assert names == {f"{uid}.{j:05d}.{f}" for j in (1, 2) for f in steps}, names
    where = tmp_path / "chain"
    alice.run("rucio", "download", "--dir", str(where), dataset)
    got = downloaded(where)
    for j in (1, 2):  # $(seed): 1 for sub-job 1, +1 per sub-job
        detsim = meta(got[f"{uid}.{j:05d}.detsim.root"])
        assert (detsim["generator"]["name"], detsim["generator"]["particles"], detsim["generator"]["momentums"]) \
            == ("gun", ["e+"], [1.398]), detsim
        assert (detsim["options"]["evtmax"], detsim["options"]["seed"]) == (50, j), detsim
        assert detsim["options"]["user_output"] == "detsim_user.root", detsim
        elecsim = meta(got[f"{uid}.{j:05d}.elecsim.root"])
        assert (elecsim["options"]["rate"], elecsim["options"]["input"]) == (10.0, "detsim.root"), elecsim
        assert elecsim["simulation"]["generator"]["particles"] == ["e+"], elecsim
        calib = meta(got[f"{uid}.{j:05d}.calib.root"])
        assert calib["conditions"]["tag"] == "GT-J25a", calib  # the task's env: calib left to its defaults
        rec = meta(got[f"{uid}.{j:05d}.rec.root"])
        assert (rec["conditions"]["tag"], rec["electronics"]["options"]["rate"]) == ("GT-J25a", 10.0), rec
        assert rec["options"]["output"] == "rec.root", rec

    # the detsim files as a dataset of their own, under the name the example reads
    alice.run("jsub", "dataset", "create", "jsub_tests.detsim_eplus")
    alice.run("jsub", "dataset", "register", "user.alice:jsub_tests.detsim_eplus",
              *(f"user.alice:{uid}.{j:05d}.detsim.root" for j in (1, 2)))
    resim = alice.cwd / "simrec_dataset.yaml"
    shutil.copy(EXAMPLES / "simrec_dataset.yaml", resim)
    task_id, uid2, dataset2, subjobs = create(alice, resim)
    assert subjobs == 2  # one per file
    state = finished(alice, task_id)
    assert state["by_state"] == {"finished": 2}, state
    names = contents(alice, dataset2)
    assert names == {f"{uid2}.{j:05d}.{f}" for j in (1, 2) for f in ("elecsim.root", "calib.root", "rec.root")}, \
        names
    where = tmp_path / "resim"
    alice.run("rucio", "download", "--dir", str(where), dataset2)
    got = downloaded(where)
    inputs = set()
    for j in (1, 2):
        elecsim = meta(got[f"{uid2}.{j:05d}.elecsim.root"])
        assert elecsim["simulation"]["generator"]["particles"] == ["e+"], elecsim  # from the chain's detsim
        inputs.add(elecsim["options"]["input"])
        rec = meta(got[f"{uid2}.{j:05d}.rec.root"])
        assert rec["electronics"]["options"]["input"] == elecsim["options"]["input"], rec
        assert rec["conditions"]["tag"] == "GT-J25a", rec
    assert inputs == {f"{uid}.{j:05d}.detsim.root" for j in (1, 2)}, inputs
