"""Job planning: DID names by the policy's naming, job keys, payload args, inputs, outputs and resources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from juno_dcs.packaged import data_file
from juno_dcs.prodsys import planning
from juno_dcs.prodsys.steering import Steering, parse_steering
from juno_dcs.topology import Topology, load_topology
from juno_rucio_policy.naming import parse

CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(data_file("topology.yaml"))


def steering(**changes: object) -> Steering:
    data: dict[str, object] = {
        "name": "e-_1MeV", "campaign": "J25a", "software": "J25.1.0",
        "args": {"detsim": "gun --particles e- --momentums 1.5 --positions 0 0 1000", "elecsim": "--rate 5"},
        "events_per_job": 10, "jobs": 4, "workflow": ["detsim", "elecsim", "cal", "rec"],
        "conditions_tag": "GT-1", "run": 1234, "destinations": ["IHEP_DISK"],
        "resources": {"elecsim": {"memory_mb": 300, "cores": 2, "walltime": "30 min"}},
    }
    data.update(changes)
    return parse_steering(data)


def test_names_follow_the_policy_naming() -> None:
    s = steering()
    assert planning.container(s) == "mc.J25a.e-_1MeV"
    assert planning.dataset(s, "cal") == "mc.J25a.e-_1MeV.cal"
    assert planning.dataset(s, "cal", log=True) == "mc.J25a.e-_1MeV.cal.log"
    assert planning.output_file(s, "rec", 7) == "mc.J25a.e-_1MeV.rec.000007.root"
    assert planning.log_file(s, "rec", 7) == "mc.J25a.e-_1MeV.rec.000007.log.tgz"
    assert parse("mc", planning.container(s)).kind == "mc.container"
    assert parse("mc", planning.dataset(s, "rec", log=True)).data_type == "log"
    assert parse("mc", planning.output_file(s, "elecsim", 999_999)).data_type == "mc.elecsim"
    assert planning.task_name(s, "elecsim") == "e-_1MeV.elecsim"
    assert planning.job_key("detsim", 3) == "detsim.000003"


def test_detsim_jobs_carry_the_physics_and_seed_the_job_number() -> None:
    s = steering()
    spec = planning.job_spec(s, "detsim", 3)
    assert spec.key == "detsim.000003"
    assert spec.transformation == "detsim"
    assert spec.args == ["--evtmax", "10", "--seed", "3", "--output", "mc.J25a.e-_1MeV.detsim.000003.root",
                         "gun", "--particles", "e-", "--momentums", "1.5", "--positions", "0", "0", "1000"]
    assert spec.inputs == []
    assert [(o.scope, o.name, o.dataset) for o in spec.outputs] == [
        ("mc", "mc.J25a.e-_1MeV.detsim.000003.root", "mc:mc.J25a.e-_1MeV.detsim")]
    assert spec.log is not None
    assert (spec.log.name, spec.log.dataset) == ("mc.J25a.e-_1MeV.detsim.000003.log.tgz",
                                                 "mc:mc.J25a.e-_1MeV.detsim.log")
    assert spec.env["JUNO_SOFTWARE_VERSION"] == "J25.1.0"
    assert spec.release == "J25.1.0"
    assert (spec.cores, spec.memory_mb, spec.walltime_s, spec.site) == (1, 250, 3600, None)


def test_muon_memory_per_event_is_passed() -> None:
    s = steering(args={"detsim": "--muon-mb-per-event 2 hepevt --exe Muon"})
    args = planning.job_spec(s, "detsim", 1).args
    assert args[args.index("--muon-mb-per-event") + 1] == "2"
    assert args[-3:] == ["hepevt", "--exe", "Muon"]
    planning.check_commands(s)


@pytest.mark.parametrize(("args", "message"), [
    ({"detsim": "--seed 3 gun"}, "args.detsim: juno-payload detsim: --seed: given twice"),
    ({"detsim": "gun --nuclear K-40"}, "args.detsim: juno-payload detsim: gun --nuclear: no such option"),
    ({"detsim": "gendecay --nuclear Xx-1"}, "gendecay --nuclear 'Xx-1': unknown nuclide"),
    ({"detsim": "gun", "elecsim": "--rate fast"}, "args.elecsim: juno-payload elecsim: --rate 'fast': not a number"),
    ({"detsim": "gun", "cal": "--run 3"}, "args.cal: juno-payload cal: --run: given twice"),
    ({"detsim": "gun 'e+"}, "args.detsim: No closing quotation"),
])
def test_commands_are_checked_before_submission(args: dict[str, str], message: str) -> None:
    with pytest.raises(planning.PlanningError, match=re.escape(message)):
        planning.check_commands(steering(args=args))


@pytest.mark.parametrize(("step", "before", "extra"), [
    ("elecsim", "detsim", ["--seed", "5", "--rate", "5"]),
    ("cal", "elecsim", ["--tag", "GT-1", "--run", "1234"]),
    ("rec", "cal", []),
])
def test_later_steps_read_the_previous_step_s_file(step: str, before: str, extra: list[str]) -> None:
    s = steering()
    spec = planning.job_spec(s, step, 5)
    previous = f"mc.J25a.e-_1MeV.{before}.000005.root"
    assert spec.args == ["--input", previous, "--output", f"mc.J25a.e-_1MeV.{step}.000005.root", *extra]
    assert spec.inputs == [f"mc:{previous}"]
    assert spec.key == f"{step}.000005"
    assert spec.outputs[0].dataset == f"mc:mc.J25a.e-_1MeV.{step}"


def test_per_step_resources() -> None:
    spec = planning.job_spec(steering(), "elecsim", 1)
    assert (spec.cores, spec.memory_mb, spec.walltime_s) == (2, 300, 1800)


def test_keys_are_stable_and_distinct() -> None:
    s = steering()
    specs = [planning.job_spec(s, step, n) for step in s.workflow for n in range(1, 5)]
    assert len({(planning.task_name(s, sp.transformation), sp.key) for sp in specs}) == 16
    assert planning.job_spec(s, "cal", 2) == planning.job_spec(s, "cal", 2)  # a replay posts the same job


def test_step_order() -> None:
    s = steering(workflow=["detsim", "elecsim"], resources={})
    assert planning.previous_step(s, "detsim") is None
    assert planning.previous_step(s, "elecsim") == "detsim"
    assert planning.next_step(s, "detsim") == "elecsim"
    assert planning.next_step(s, "elecsim") is None


def test_job_of_file_reads_only_this_production_s_step_outputs() -> None:
    s = steering()
    assert planning.job_of_file(s, "detsim", "mc.J25a.e-_1MeV.detsim.000042.root") == 42
    assert planning.job_of_file(s, "detsim", "mc.J25a.e-_1MeV.detsim.000042.log.tgz") is None
    assert planning.job_of_file(s, "detsim", "mc.J25a.e-_1MeV.elecsim.000042.root") is None
    assert planning.job_of_file(s, "detsim", "mc.J25b.e-_1MeV.detsim.000042.root") is None
    assert planning.job_of_file(s, "detsim", "mc.J25a.other.detsim.000042.root") is None
    assert planning.job_of_file(s, "detsim", "stray-file.root") is None


def test_output_storage_pins_the_site(topology: Topology) -> None:
    assert planning.site_of_storage(steering(), topology) is None
    pinned = steering(output_storage="JINR_DISK")
    assert planning.site_of_storage(pinned, topology) == "JINR"
    assert planning.job_spec(pinned, "detsim", 1, planning.site_of_storage(pinned, topology)).site == "JINR"
    with pytest.raises(planning.PlanningError, match=r"output_storage: 'NOWHERE_DISK' is not an RSE"):
        planning.site_of_storage(steering(output_storage="NOWHERE_DISK"), topology)
    with pytest.raises(planning.PlanningError, match=r"output_storage: 'IHEP_TAPE' is a TAPE RSE"):
        planning.site_of_storage(steering(output_storage="IHEP_TAPE"), topology)


def test_the_release_must_be_installed_where_the_jobs_go(topology: Topology) -> None:
    assert planning.check_release(steering(), topology, None) == "J25.1.0"
    assert planning.check_release(steering(software="x86_64/Release/J24.1.0"), topology, "JINR") == "J24.1.0"
    with pytest.raises(planning.PlanningError) as err:
        planning.check_release(steering(software="J99.0.0"), topology, None)
    assert str(err.value).startswith("software: release 'J99.0.0' is installed at no site of the topology; the "
                                     "releases are J20v1r0-Pre2 (CNAF, IHEP, IN2P3, JINR), J23.1.0 (CNAF, IHEP), J24")
    with pytest.raises(planning.PlanningError, match=r"release 'J24\.1\.0' is not installed at SYSU-CLUSTER, "
                                                     r"where output_storage .* pins the jobs; it is at CNAF, IHEP,"):
        planning.check_release(steering(software="J24.1.0"), topology, "SYSU-CLUSTER")
