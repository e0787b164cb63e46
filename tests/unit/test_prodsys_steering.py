"""Steering files: valid ones load, each kind of bad one is refused with the file and the field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from juno_dcs.errors import ConfigError
from juno_dcs.prodsys.steering import Steering, SteeringError, load_steering, parse_steering

CHECKOUT = Path(__file__).resolve().parents[2]


def good(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "e-_1MeV", "campaign": "J25a", "software": "J25.1.0",
        "args": {"detsim": "gun --particles e- --momentums 1.0"},
        "events_per_job": 10, "jobs": 4, "workflow": ["detsim", "elecsim", "cal", "rec"],
        "conditions_tag": "GT-1", "run": 1234, "output_storage": "site-local", "destinations": ["IHEP_DISK"],
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "steering.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def refused(tmp_path: Path, data: Any) -> str:
    path = write(tmp_path, data)
    with pytest.raises(SteeringError) as info:
        load_steering(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


def test_a_full_steering_file_loads(tmp_path: Path) -> None:
    steering = load_steering(write(tmp_path, good(lifetime="30 days", resources={
        "detsim": {"memory_mb": 1500, "cores": 2, "walltime": "2 hours"}})))
    assert steering.final_step == "rec"
    assert steering.lifetime == 30 * 86400
    assert steering.resources_of("detsim").walltime == 7200
    assert steering.resources_of("rec").memory_mb == 250  # defaults for steps not listed
    assert isinstance(SteeringError("x"), ConfigError)


def test_the_example_steering_files_load() -> None:
    files = sorted((CHECKOUT / "etc" / "productions").glob("*.yaml"))
    assert files
    for path in files:
        assert isinstance(load_steering(path), Steering)


@pytest.mark.parametrize("workflow", [["detsim"], ["detsim", "elecsim"], ["detsim", "elecsim", "cal"]])
def test_a_workflow_is_any_prefix(workflow: list[str]) -> None:
    steering = parse_steering(good(workflow=workflow))
    assert steering.workflow == workflow
    assert steering.final_step == workflow[-1]


def test_without_cal_no_conditions_are_needed() -> None:
    parse_steering(good(workflow=["detsim", "elecsim"], conditions_tag=None, run=None))


@pytest.mark.parametrize(("changes", "field", "phrase"), [
    ({"name": None}, "name", "Field required"),
    ({"name": "has.dot"}, "name", "letters, digits"),
    ({"name": "x" * 33}, "name", "1-32"),
    ({"campaign": ""}, "campaign", "letters, digits"),
    ({"software": ""}, "software", "at least 1"),
    ({"args": None}, "args", "Field required"),
    ({"args": {"elecsim": "--rate 3"}}, "(top level)", "args.detsim: the generator and its options are needed"),
    ({"args": {"detsim": "gun", "sim": "--x"}}, "args.sim", "'detsim'"),
    ({"args": {"detsim": 3}}, "args.detsim", "valid string"),
    ({"workflow": ["detsim"], "args": {"detsim": "gun", "rec": ""}}, "(top level)",
     "args for steps not in the workflow: rec"),
    ({"tags": {"particle": "e-"}}, "tags", "unknown field"),
    ({"events_per_job": 0}, "events_per_job", "greater than or equal to 1"),
    ({"events_per_job": "many"}, "events_per_job", "valid integer"),
    ({"jobs": 0}, "jobs", "greater than or equal to 1"),
    ({"jobs": 1_000_000}, "jobs", "less than or equal to 999999"),
    ({"workflow": []}, "workflow", "at least 1"),
    ({"workflow": ["elecsim"]}, "workflow", "prefix of detsim, elecsim, cal, rec"),
    ({"workflow": ["detsim", "cal"]}, "workflow", "prefix"),
    ({"workflow": ["detsim", "sim"]}, "workflow.1", "'detsim'"),
    ({"conditions_tag": None}, "(top level)", "the cal step needs conditions_tag"),
    ({"run": None, "conditions_tag": None}, "(top level)", "conditions_tag and run"),
    ({"run": -1}, "run", "greater than or equal to 0"),
    ({"output_storage": "ihep disk"}, "output_storage", "'site-local' or the name of a DISK RSE"),
    ({"destinations": []}, "destinations", "at least 1"),
    ({"destinations": None}, "destinations", "Field required"),
    ({"lifetime": "forever"}, "lifetime", "not a duration"),
    ({"lifetime": 0}, "lifetime", "positive"),
    ({"resources": {"detsim": {"memory_mb": 0}}}, "resources.detsim.memory_mb", "greater than or equal to 1"),
    ({"resources": {"detsim": {"walltime": "soon"}}}, "resources.detsim.walltime", "not a duration"),
    ({"resources": {"detsim": {"cpus": 2}}}, "resources.detsim.cpus", "unknown field"),
    ({"resources": {"gen": {}}}, "resources.gen", "'detsim'"),
    ({"workflow": ["detsim"], "resources": {"rec": {}}}, "(top level)", "steps not in the workflow: rec"),
    ({"max_attempts": 0}, "max_attempts", "greater than or equal to 1"),
    ({"prority": 3}, "prority", "unknown field"),
])
def test_bad_fields_are_named(tmp_path: Path, changes: dict[str, Any], field: str, phrase: str) -> None:
    message = refused(tmp_path, good(**changes))
    assert f"{field}: " in message, message
    assert phrase in message, message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = refused(tmp_path, good(jobs=0, events_per_job=0, name="a b"))
    for field in ("jobs: ", "events_per_job: ", "name: "):
        assert field in message, message


@pytest.mark.parametrize(("text", "phrase"), [
    ("", "a mapping"),
    ("- detsim\n", "not a list"),
    ("name: [unclosed\n", "not valid YAML"),
    ("just words\n", "not a str"),
])
def test_files_that_are_not_steering(tmp_path: Path, text: str, phrase: str) -> None:
    assert phrase in refused(tmp_path, text)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SteeringError, match=r"nope\.yaml: cannot read the steering file"):
        load_steering(tmp_path / "nope.yaml")
