"""A user task, as alice tells it: a JSUB-style task file whose jobvar splitter crosses two particles (each zipped
with a nuclide) with two momenta; `jsub create --submit` sends its four sub-jobs to the dispatcher; the grid's
pilots run each (a detsim gun payload, a detsim gendecay payload, then her shell step); the outputs land in her
scope `user.alice`, where she downloads them with the stock rucio CLI, and their metadata shows the options each
sub-job ran with; `jsub getlog` brings back one sub-job's log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import uproot

from tests.e2e.shell import downloaded, table
from tests.e2e.stories import UserTask

pytestmark = [pytest.mark.grid, pytest.mark.e2e]

LABELS = {"e-_1MeV", "e-_3MeV", "gamma_1MeV", "gamma_3MeV"}  # the cross product of the two groups


# four short jobs: about a minute on an idle 2-core machine; pilots are started on demand by the factory
@pytest.mark.timeout(900)
def test_a_users_jobvar_task_fills_her_scope_and_gives_back_a_subjobs_log(user_task: UserTask,
                                                                          tmp_path: Path) -> None:
    task, alice = user_task, user_task.user
    assert task.subjobs == 4, task.created
    assert task.dataset == f"user.alice:e2e.{task.name}", task.created
    state = task.wait()
    assert state["by_state"] == {"finished": 4}, state

    labels = {}
    for jobid in range(1, 5):
        shown = alice.out("jsub", "show", str(task.task_id), "--subjob", str(jobid))
        variables = __import__("json").loads(shown.split("--- script")[0])["vars"]
        labels[jobid] = variables
    assert {v["label"] for v in labels.values()} == LABELS

    # her dataset: each sub-job's detsim file and summary, named <uid>.<jobid:05d>.<file>
    content = {row["SCOPE:NAME"] for row in table(alice.out("rucio", "did", "content", "list", task.dataset))}
    expected = {f"user.alice:{task.uid}.{j:05d}.{v['label']}.{kind}" for j, v in labels.items()
                for kind in ("detsim.root", "decay.root", "txt")}
    assert content == expected

    where = tmp_path / "outputs"
    alice.run("rucio", "download", "--dir", str(where), task.dataset)
    got = downloaded(where)
    assert set(got) == {did.split(":", 1)[1] for did in expected}
    for j, v in labels.items():
        summary = got[f"{task.uid}.{j:05d}.{v['label']}.txt"].read_text().split()
        root = got[f"{task.uid}.{j:05d}.{v['label']}.detsim.root"]
        assert summary == [f"particle={v['particle']}", f"energy={v['energy']}", "events=5", f"seed={v['seed']}",
                           f"bytes={root.stat().st_size}"], (j, summary)
        assert root.read_bytes()[:4] == b"root"  # a ROOT file, written by the detsim payload
        with uproot.open(root) as gun, uproot.open(got[f"{task.uid}.{j:05d}.{v['label']}.decay.root"]) as decay:
            gun_meta, decay_meta = json.loads(str(gun["meta"])), json.loads(str(decay["meta"]))
            assert gun["sim"].num_entries == 5
            assert decay["sim"].num_entries == 5
        assert gun_meta["generator"]["particles"] == [v["particle"]], gun_meta
        assert gun_meta["generator"]["momentums"] == [float(v["energy"])], gun_meta
        assert (gun_meta["options"]["seed"], gun_meta["options"]["evtmax"]) == (int(v["seed"]), 5), gun_meta
        assert decay_meta["generator"] == {"name": "gendecay", "nuclear": v["nuclear"], "volume": "pTarget",
                                           "material": "LS"}, decay_meta

    # one sub-job's log: the pilot's tarball from Rucio, unpacked
    logs = tmp_path / "logs"
    listed = alice.out("jsub", "getlog", str(task.task_id), "2", "--dest", str(logs)).split()
    unpacked = logs / f"{task.uid}.00002"
    assert {Path(p).name for p in listed} >= {"pilot.log", "payload.stdout", "payload.stderr", "job.json"}, listed
    stdout = (unpacked / "payload.stdout").read_text()
    assert '"step": "detsim"' in stdout, stdout
    assert f"{task.name}" in (unpacked / "job.json").read_text()
