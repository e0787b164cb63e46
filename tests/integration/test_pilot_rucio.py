"""The pilot's Rucio stage-in and stage-out against the test session's grid, as account production in scope mc."""

from __future__ import annotations

from pathlib import Path

import pytest

from juno_dcs.pilot.stager import RucioStager, StageInError, StageOutError, adler32_of
from tests.conftest import Grid
from tests.integration.pilot_helpers import CA_DIR, campaign, check_grid, clients, mc_dataset, mc_file


@pytest.fixture
def stager(grid: Grid, monkeypatch: pytest.MonkeyPatch) -> RucioStager:
    check_grid(grid)
    config = clients(grid) / "production.cfg"
    monkeypatch.setenv("RUCIO_CONFIG", str(config))  # restored after the test
    monkeypatch.setenv("X509_CERT_DIR", str(CA_DIR))
    return RucioStager(config)


def test_stage_out_registers_attaches_and_replays(stager: RucioStager, tmp_path: Path) -> None:
    camp = campaign()
    name, dataset = mc_file(camp, "detsim", 1), mc_dataset(camp, "detsim")
    path = tmp_path / name
    path.write_bytes(b"first attempt " * 100)
    first = stager.stage_out(path, "mc", name, dataset, "CNAF_DISK")
    assert (first.bytes, first.adler32, first.rse) == (1400, adler32_of(path), "CNAF_DISK")
    client = stager.client
    # the dataset did not exist: the pilot made it, with a rule at the output RSE
    assert [(d["name"]) for d in client.list_content("mc", dataset.split(":")[1])] == [name]
    rules = list(client.list_did_rules("mc", dataset.split(":")[1]))
    assert [r["rse_expression"] for r in rules] == ["CNAF_DISK"]
    replicas = list(client.list_replicas([{"scope": "mc", "name": name}], sort="random"))
    assert replicas[0]["states"] == {"CNAF_DISK": "AVAILABLE"}
    # a retried attempt with a different file of the same name: the registered one is kept, nothing fails
    path.write_bytes(b"second attempt")
    again = stager.stage_out(path, "mc", name, dataset, "IHEP_DISK")
    assert again == first
    assert len(list(client.list_content("mc", dataset.split(":")[1]))) == 1
    # an attachment that exists is fine
    stager.attach(dataset, "mc", name)
    stager.ensure_dataset(dataset, "CNAF_DISK")


def test_stage_out_to_an_existing_dataset(stager: RucioStager, tmp_path: Path) -> None:
    camp = campaign()
    dataset = mc_dataset(camp, "elecsim")
    stager.client.add_dataset("mc", dataset.split(":")[1])  # made by whoever submitted the task, without rule
    for job in (1, 2):
        path = tmp_path / mc_file(camp, "elecsim", job)
        path.write_bytes(f"job {job}".encode())
        stager.stage_out(path, "mc", path.name, dataset, "IN2P3_DISK")
    names = sorted(d["name"] for d in stager.client.list_content("mc", dataset.split(":")[1]))
    assert names == [mc_file(camp, "elecsim", 1), mc_file(camp, "elecsim", 2)]


def test_stage_in_closest_replica(stager: RucioStager, tmp_path: Path) -> None:
    camp = campaign()
    name = mc_file(camp, "detsim", 7)
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / name).write_bytes(b"hits" * 1000)
    stager.stage_out(tmp_path / "up" / name, "mc", name, mc_dataset(camp, "detsim"), "CNAF_DISK")
    assert stager.sources(f"mc:{name}", near="IN2P3_DISK") == ["CNAF_DISK"]
    # closeness is Rucio's distance: CNAF is 2 from IN2P3, IHEP 4 (etc/topology.yaml)
    assert stager.distance("CNAF_DISK", "IN2P3_DISK") < stager.distance("IHEP_DISK", "IN2P3_DISK")
    assert stager.distance("IN2P3_DISK", "IN2P3_DISK") == 0
    (tmp_path / "in").mkdir()
    path = stager.stage_in(f"mc:{name}", tmp_path / "in", near="IN2P3_DISK")
    assert path.read_bytes() == b"hits" * 1000


def test_stage_in_missing_file(stager: RucioStager, tmp_path: Path) -> None:
    with pytest.raises(StageInError, match="no such file"):
        stager.stage_in(f"mc:{mc_file(campaign(), 'detsim', 1)}", tmp_path, near="IHEP_DISK")


def test_stage_out_of_a_file_the_payload_did_not_write(stager: RucioStager, tmp_path: Path) -> None:
    camp = campaign()
    with pytest.raises(StageOutError, match="did not write"):
        stager.stage_out(tmp_path / mc_file(camp, "rec", 1), "mc", mc_file(camp, "rec", 1), mc_dataset(camp, "rec"),
                         "IHEP_DISK")


def test_stage_out_with_a_bad_name_is_a_stageout_error(stager: RucioStager, tmp_path: Path) -> None:
    path = tmp_path / "not-a-juno-name.root"
    path.write_bytes(b"x")
    with pytest.raises(StageOutError):
        stager.stage_out(path, "mc", path.name, mc_dataset(campaign(), "rec"), "IHEP_DISK")
