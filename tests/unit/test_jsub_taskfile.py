"""jsub task files: every bad file gets an error that names the file and the field; JSUB's files load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from juno_dcs.jsub.build import build, check_payloads, naming_for
from juno_dcs.jsub.errors import SplitError, TaskFileError
from juno_dcs.jsub.registry import Registry
from juno_dcs.jsub.split import split
from juno_dcs.jsub.taskfile import load_task
from juno_dcs.jsub.tasks import create
from juno_dcs.payloads.grammar import check

CHECKOUT = Path(__file__).resolve().parents[2]
GOOD = """
taskName: t1
splitter: {mode: splitByEvent, totalEvents: 10, evtMaxPerJob: 5}
workflow:
  steps: [detsim]
  detsim: {particles: e-}
"""

BAD = [
    ("nothing: here", "taskName: Field required"),
    ("[1, 2]", "a task file is a YAML mapping"),
    ("taskName: 'a b'\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\nworkflow: {detsim: {}}",
     "taskName: String should match pattern"),
    ("taskName: t\nsplitter: {mode: splitByLuck}\nworkflow: {detsim: {}}",
     "splitter: Input tag 'splitByLuck' found using 'mode' does not match any of the expected tags"),
    ("taskName: t\nsplitter: {mode: splitByEvent, totalEvents: 10}\nworkflow: {detsim: {}}",
     "splitter.splitByEvent: splitByEvent needs two of totalEvents, evtMaxPerJob and njobs"),
    ("taskName: t\nsplitter: {mode: splitByEvent, totalEvents: -5, njobs: 2}\nworkflow: {detsim: {}}",
     "splitter.splitByEvent.totalEvents: Input should be greater than 0"),
    ("taskName: t\nsplitter: {mode: splitByJobvars, jobvarLists: {x: {type: enumerate, list: []}}}\n"
     "workflow: {detsim: {}}", "splitter.splitByJobvars.jobvarLists.x.enumerate.list: List should have at least 1"),
    ("taskName: t\nsplitter: {mode: splitByJobvars, jobvarLists: {x: {type: random}}}\nworkflow: {detsim: {}}",
     "jobvarLists.x: Input tag 'random' found using 'type' does not match"),
    ("taskName: t\nsplitter: {mode: splitByJobvars, jobvarLists: {x: {type: range, step: 0, length: 2}}}\n"
     "workflow: {detsim: {}}", "jobvarLists.x.range.step: step must not be 0"),
    ("taskName: t\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}", "workflow: required"),
    ("taskName: t\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\nworkflow: {steps: [ana]}",
     "workflow.ana: listed in workflow.steps but not defined"),
    ("taskName: t\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\nworkflow: {steps: [detsim], ana: {}}",
     "workflow.ana: defined but not listed in workflow.steps"),
    ("taskName: t\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\nworkflow: {ana: {exe: a.sh}}",
     "workflow.ana.type: Field required"),
    ("taskName: t\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\nworkflow: {ana: {type: exe}}",
     "workflow.ana: an exe step needs `exe`"),
    ("taskName: t\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\nworkflow: {detsim: {energy: 3}}",
     "workflow.detsim.energy: Extra inputs are not permitted"),
    ("taskName: t\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\n"
     "workflow: {ana: {type: cmd, cmd: x, outputUpload: '*.root'}}", "wildcards are not supported"),
    ("taskName: t\nbackend: {type: dirac, site: [A, B]}\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\n"
     "workflow: {detsim: {}}", "backend.site: the dispatcher pins a job to one site"),
    ("taskName: t\nbackend: {type: condor}\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\n"
     "workflow: {detsim: {}}", "backend.type: Input should be 'dispatcher', 'local' or 'dirac'"),
    ("taskName: t\nexperiment: cepc\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\nworkflow: {detsim: {}}",
     "experiment: Input should be 'juno' or 'common'"),
    ("taskName: t\nsplitter: {mode: splitByDataset, dataset: nodataset}\nworkflow: {rec: {}}",
     "splitter.splitByDataset.dataset: String should match pattern"),
    ("taskName: t\n\tsplitter: 1", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_task_file_names_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TaskFileError) as info:
        load_task(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match="cannot read the task file: No such file"):
        load_task(tmp_path / "none.yaml")


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("taskName: t\nsplitter: {mode: splitByEvent, njobs: 0, evtMax: 1}\nworkflow: {detsim: {x: 1}}")
    with pytest.raises(TaskFileError) as info:
        load_task(path)
    message = str(info.value)
    assert "splitter.splitByEvent.njobs: Input should be greater than 0" in message
    assert "workflow.detsim.x: Extra inputs are not permitted" in message


def _built(path: Path, account: str = "alice") -> list[str]:
    task = load_task(path)
    naming = naming_for(task, account, f"{task.task_name}.abc123")
    return [build(task, sub, naming).script for sub in split(task, {"taskname": task.task_name}).subjobs]


def test_unknown_variable_in_a_step_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("taskName: t\nsplitter: {mode: splitByEvent, njobs: 2, evtMax: 1}\n"
                    "workflow: {ana: {type: cmd, cmd: 'echo $(enrgy)'}}")
    with pytest.raises(SplitError, match=r"workflow\.ana\.cmd: unknown variable \$\(enrgy\); known: .*evtmax"):
        _built(path)


def test_payload_detsim_line_and_outputs(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(GOOD)
    task = load_task(path)
    naming = naming_for(task, "alice", "t1.abc123")
    subs = split(task, {}).subjobs
    built = build(task, subs[1], naming)
    assert "juno-payload detsim --evtmax 5 --output detsim.root --seed 2 gun --particles e-\n" in built.script
    assert [(c.where, c.step, c.argv) for c in built.payloads] == [
        ("workflow.detsim", "detsim", ["--evtmax", "5", "--output", "detsim.root", "--seed", "2", "gun", "--particles",
                                       "e-"])]
    assert built.outputs == {"detsim.root": "t1.abc123.00002.detsim.root"}
    spec = built.spec
    assert spec.transformation == "exec"
    assert spec.args[:2] == ["bash", "-c"]
    assert spec.key == "00002"
    assert [(o.scope, o.name, o.dataset) for o in spec.outputs] == [
        ("user.alice", "t1.abc123.00002.detsim.root", "user.alice:jsub.t1.abc123")]
    assert spec.log is not None
    assert (spec.log.name, spec.log.dataset) == ("t1.abc123.00002.log.tgz", "user.alice:jsub.t1.abc123.log")


def test_chained_payload_steps_feed_each_other(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("taskName: t\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 3}\n"
                    "workflow: {steps: [detsim, elecsim, rec], detsim: {upload: false, particles: e-},"
                    " elecsim: {upload: false}}")
    script = _built(path)[0]
    assert "juno-payload elecsim --input detsim.root --output elecsim.root --seed 1" in script
    assert "juno-payload rec --input elecsim.root --output rec.root" in script
    assert "mv -f -- rec.root t.abc123.00001.rec.root" in script
    assert "detsim.root t.abc123" not in script


def test_rec_without_input_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("taskName: t\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 3}\nworkflow: {rec: {}}")
    with pytest.raises(SplitError, match=r"workflow\.rec\.input: rec needs an input"):
        _built(path)


def test_output_names_must_be_rucio_names(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("taskName: t\nsplitter: {mode: splitByJobvars, jobvarLists: {p: {type: enumerate, list: [e+]}}}\n"
                    "workflow: {ana: {type: cmd, cmd: x, outputUpload: ['$(p).txt']}}")
    with pytest.raises(SplitError, match=r"output 'e\+.txt': user.alice:t.abc123.00001.e\+.txt: a name is"):
        _built(path)


def test_output_dataset_outside_the_user_scope(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("taskName: t\nbackend: {outputDataset: 'mc:stolen'}\n"
                    "splitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\nworkflow: {detsim: {}}")
    with pytest.raises(TaskFileError, match=r"backend\.outputDataset: mc:stolen is not in your scope user\.alice"):
        naming_for(load_task(path), "alice", "t.x")


def test_jsub_103_example_as_jsub_wrote_it(tmp_path: Path) -> None:
    """JUNO JSUB's examples/juno/103_jobvar_splitter.yaml (copied in etc/jsub) loads: 6 x 20 = 120 sub-jobs."""
    path = CHECKOUT / "etc" / "jsub" / "jsub_juno_103.yaml"
    task = load_task(path)
    assert task.ignored == []
    assert task.soft_version == "centos7_amd64_gcc830/Pre-Release/J20v1r0-Pre2"
    assert task.backend.kind == "dispatcher"
    naming = naming_for(task, "alice", "x.1")
    assert naming.output_dataset == "jsub_tests.juno_sim_jobvar_splitter"
    subs = split(task, {}).subjobs
    assert len(subs) == 120
    assert len({s.vars["seed"] for s in subs}) == 120
    built = build(task, subs[0], naming)
    assert ("juno-payload detsim --evtmax 5000 --output U-238.1.detsim.root --seed 10001 --user-output "
            "U-238.1.user.detsim.root gendecay --nuclear U-238 --volume pTarget --material LS\n") in built.script
    assert set(built.outputs) == {"U-238.1.detsim.root", "U-238.1.user.detsim.root"}
    assert built.spec.env["JUNO_SOFTWARE_VERSION"] == task.soft_version
    assert built.spec.release == "J20v1r0-Pre2"  # the CVMFS path's last part: brokerage sends it where that is
    check_payloads(built.payloads, str(path))
    parsed = check("detsim", built.payloads[0].argv)
    assert (parsed.generator, parsed.gen("nuclear"), parsed["evtmax"]) == ("gendecay", "U-238", 5000)


@pytest.mark.parametrize("name", sorted(p.name for p in (CHECKOUT / "etc" / "jsub").glob("*.yaml")))
def test_every_example_task_file_loads(name: str, tmp_path: Path) -> None:
    path = CHECKOUT / "etc" / "jsub" / name
    task = load_task(path)
    assert task.steps
    data = yaml.safe_load(path.read_text())
    if data["splitter"]["mode"] != "splitByDataset":
        shutil.copy(path, tmp_path / name)
        assert split(task, {}).subjobs


def test_jsub_chain_with_gun_keys_and_a_default_calib_step() -> None:
    path = CHECKOUT / "etc" / "jsub" / "jsub_juno_chain.yaml"
    task = load_task(path)
    assert [(name, step.payload) for name, step in task.steps] == [
        ("detsim", "detsim"), ("elecsim", "elecsim"), ("calib", "cal"), ("rec", "rec")]
    assert task.ignored == []
    subs = split(task, {}).subjobs
    built = build(task, subs[1], naming_for(task, "alice", "c.1"))
    lines = [line for line in built.script.splitlines() if line.startswith("juno-payload")]
    assert lines == [
        "juno-payload detsim --evtmax 50 --output detsim.root --seed 2 --user-output detsim_user.root "
        "gun --particles e+ --momentums 1.398",
        "juno-payload elecsim --input detsim.root --output elecsim.root --seed 2 --rate 10.0",
        "juno-payload cal --input elecsim.root --output calib.root",
        "juno-payload rec --input calib.root --output rec.root"]
    assert list(built.outputs) == ["detsim.root", "detsim_user.root", "elecsim.root", "calib.root", "rec.root"]
    assert built.spec.env["JUNO_GLOBAL_TAG"] == "GT-J25a"
    check_payloads(built.payloads, str(path))
    assert [p.step for p in built.payloads] == ["detsim", "elecsim", "cal", "rec"]


def test_jsub_101_additional_args_gun() -> None:
    path = CHECKOUT / "etc" / "jsub" / "jsub_juno_101.yaml"
    task = load_task(path)
    built = build(task, split(task, {}).subjobs[2], naming_for(task, "alice", "g.1"))
    assert ("juno-payload detsim --evtmax 100 --output detsim-3.root --seed 3 gun --particles e+ --momentums 1.398"
            in built.script)
    parsed = check("detsim", built.payloads[0].argv)
    assert (parsed.gen("particles"), parsed.gen("momentums"), parsed["evtmax"]) == (["e+"], [1.398], 100)


@pytest.mark.parametrize(("workflow", "message"), [
    ("detsim: {additionalArgs: '--no-such-option 3 gun'}",
     "workflow.detsim: juno-payload detsim: --no-such-option: no such option"),
    ("detsim: {additionalArgs: 'gun --nuclear U-238'}", "workflow.detsim: juno-payload detsim: gun --nuclear: no such"),
    ("detsim: {additionalArgs: 'gendecay --nuclear Xx-1'}", "gendecay --nuclear 'Xx-1': unknown nuclide"),
    ("detsim: {}", "workflow.detsim: juno-payload detsim: a generator is needed"),
    ("detsim: {particles: e+, additionalArgs: 'gendecay'}", "workflow.detsim.particles: the step's gun keys and the "
                                                            "generator 'gendecay' of additionalArgs"),
    ("detsim: {particles: pi0}", "gun --particles 'pi0': unknown particle"),
    ("detsim: {fullArgs: '--evtmax x gun'}", "juno-payload detsim: --evtmax 'x': not an integer"),
    ("detsim: {particles: e-, additionalArgs: \"--seed 'x\"}", "workflow.detsim.additionalArgs"),
    ("{steps: [detsim, elecsim], detsim: {particles: e-}, elecsim: {rate: fast}}",
     "workflow.elecsim: juno-payload elecsim: --rate 'fast': not a number"),
])
def test_payload_command_lines_are_checked_at_create(tmp_path: Path, workflow: str, message: str) -> None:
    from juno_dcs.jsub.registry import Registry
    from juno_dcs.jsub.tasks import create

    path = tmp_path / "t.yaml"
    body = workflow if workflow.startswith("{") else "{" + workflow + "}"
    path.write_text(f"taskName: t\nsplitter: {{mode: splitByEvent, njobs: 2, evtMax: 3}}\nworkflow: {body}\n")
    registry = Registry(tmp_path / "reg")
    with pytest.raises((TaskFileError, SplitError)) as info:
        create(registry, path, "alice", None)
    assert message in str(info.value), str(info.value)
    assert not list((tmp_path / "reg").glob("tasks/*.json"))  # nothing stored


def test_keys_that_do_not_apply_are_reported() -> None:
    from juno_dcs.jsub.taskfile import parse_task

    task = parse_task({"taskName": "t", "splitter": {"mode": "splitByEvent", "njobs": 1, "evtMax": 2},
                       "workflow": {"detsim": {"particles": "e-", "rate": 3}, "rec": {"particles": "e-"}}})
    assert task.ignored == ["workflow.detsim.rate: not an option of detsim: ignored",
                            "workflow.rec.particles: not an option of rec: ignored"]


def test_submit_checks_the_stored_command_lines_again(tmp_path: Path) -> None:
    from juno_dcs.jsub.registry import PayloadCall, Registry
    from juno_dcs.jsub.tasks import create, submit_dispatcher

    path = tmp_path / "t.yaml"
    path.write_text("taskName: t\nsplitter: {mode: splitByEvent, njobs: 2, evtMax: 3}\n"
                    "workflow: {detsim: {particles: e-}}\n")
    registry = Registry(tmp_path / "reg")
    record = create(registry, path, "alice", "http://127.0.0.1:9")
    record.subjobs[0].payloads = [PayloadCall(where="workflow.detsim", step="detsim", argv=["gun", "--bad"])]
    with pytest.raises(TaskFileError, match=r"workflow\.detsim: juno-payload detsim: gun --bad: no such option"):
        submit_dispatcher(registry, record, None, None)  # type: ignore[arg-type]  # refused before any client call
    assert not registry.load(record.id).datasets_created


RELEASES = {"J24.1.0": ["CNAF", "IHEP"], "J25.1.0": ["IHEP"]}


@pytest.mark.parametrize(("version", "backend", "answer", "expected"), [
    ("J25.1.0", "dirac", RELEASES, []),
    ("centos7_amd64_gcc830/Release/J24.1.0", "dispatcher", RELEASES, []),
    ("J25.1.0", "dirac", None, ["softVersion: release J25.1.0 not checked (the dispatcher did not answer); it is "
                                "at submit"]),
    ("J99.0.0", "local", RELEASES, []),  # a local task runs here
])
def test_create_checks_the_release_with_the_dispatcher(tmp_path: Path, version: str, backend: str,
                                                        answer: dict[str, list[str]] | None,
                                                        expected: list[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"softVersion: {version}\nbackend: {{type: {backend}}}\n" + GOOD)
    record = create(Registry(tmp_path / "reg"), path, "alice", "http://127.0.0.1:9", releases=lambda: answer)
    assert [w for w in record.warnings if w.startswith("softVersion")] == expected


def test_create_refuses_a_release_no_site_has(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("softVersion: centos7_amd64_gcc830/Pre-Release/J20v1r0-Pre2\n" + GOOD)
    reg = Registry(tmp_path / "reg")
    with pytest.raises(TaskFileError) as err:
        create(reg, path, "alice", None, releases=lambda: RELEASES)
    assert str(err.value) == (f"{path}: softVersion: release 'J20v1r0-Pre2' is installed at no site; the releases "
                              "are J24.1.0 (CNAF, IHEP), J25.1.0 (IHEP)")
    assert reg.next_id() == 1  # nothing was stored


def test_a_soft_version_that_names_no_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("softVersion: 'J25 beta/'\n" + GOOD)
    with pytest.raises(TaskFileError, match=r"softVersion: .*release 'J25 beta' \(the last part of"):
        load_task(path)
