"""Failures: the classes of wms-errors.yaml, the retry rules of wms-retry.yaml, and failures grouped for the
status commands. Every bad file names the file, the rule and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from juno_dcs.errors import ConfigError
from juno_dcs.packaged import data_file
from juno_dcs.wms.classify import ErrorRules, classify, load_error_rules
from juno_dcs.wms.failures import group, normalise
from juno_dcs.wms.models import ERROR_CODES
from juno_dcs.wms.retry import decide, load_rules

USAGE = ("the payload exited with code 2: juno-payload detsim: error: gun --nuclear: no such option (the options "
         "of gun: --particles, --momentums)")
CLASSES = """classes:
  usage: {nature: deterministic}
  payload: {nature: transient}
  stagein: {nature: transient}
  stageout: {nature: transient}
  memory: {nature: transient}
  walltime: {nature: transient}
  lost: {nature: transient}
  killed: {nature: deterministic}
"""


@pytest.fixture(scope="module")
def classes() -> ErrorRules:
    return load_error_rules(data_file("wms-errors.yaml"))


# --- classification with the package's rules
@pytest.mark.parametrize(("code", "exit_code", "diag", "expected"), [
    (1305, 2, USAGE, ("usage", "deterministic")),
    (1305, 2, "juno-payload detsim: error: gendecay --nuclear Xx-1: unknown nuclide (one of U-238, Th-232)",
     ("usage", "deterministic")),
    (1305, 2, "juno-payload elecsim: error: input /tmp/w/in.root: no such file", ("missing_input", "deterministic")),
    (1305, 2, "juno-payload rec: error: input in.root: no tree 'calib'", ("bad_input", "deterministic")),
    (1305, 3, "juno-payload cal: error: no conditions endpoint answered", ("service", "transient")),
    (1305, 1, "Traceback ...\nMemoryError", ("memory", "transient")),
    (1305, -9, "", ("memory", "transient")),
    (1305, 127, "cannot start myprog: no executable 'myprog'", ("no_program", "deterministic")),
    (1305, 1, "Segmentation fault", ("payload", "transient")),
    (1099, None, "stage-in of user.a:f.root: user.a:f.root: no such file in Rucio", ("missing_input", "deterministic")),
    (1099, None, "stage-in of user.a:f.root: no available replica on disk", ("stagein", "transient")),
    (1137, None, "stage-out of user.a:o.root: the payload did not write o.root", ("missing_output", "deterministic")),
    (1137, None, "stage-out of user.a:o.root to CNAF_DISK: timeout", ("stageout", "transient")),
    (1235, None, "used 600 MB, more than the limit of 300 MB", ("memory", "transient")),
    (1201, None, "lease of pilot p ended", ("lost", "transient")),
    (1213, None, "ran 100 s", ("walltime", "transient")),
    (1144, None, "killed by a command", ("killed", "deterministic")),
])
def test_the_packaged_classes(classes: ErrorRules, code: int, exit_code: int | None, diag: str,
                              expected: tuple[str, str]) -> None:
    failure = classify(classes, code, exit_code, diag)
    assert (failure.error_class, failure.nature) == expected


def test_a_reported_name_without_a_rule_is_the_class(classes: ErrorRules) -> None:
    failure = classify(classes, 1201, None, "")
    assert failure.rule is None
    assert failure.words() == "lost, transient (as reported)"
    assert classify(classes, 1305, 2, USAGE).words() == "usage, deterministic (rule 1)"


def test_every_condition_of_a_match_must_hold(tmp_path: Path) -> None:
    path = tmp_path / "errors.yaml"
    path.write_text(CLASSES + "rules:\n  - match: {reported: payload, exit_code: [2, 4], message: 'no such'}\n"
                              "    error_class: usage\n")
    rules = load_error_rules(path)
    assert classify(rules, 1305, 4, "No Such option").error_class == "usage"  # case-insensitive
    assert classify(rules, 1305, 1, "no such option").error_class == "payload"
    assert classify(rules, 1099, 2, "no such option").error_class == "stagein"


# --- bad classification files
@pytest.mark.parametrize(("text", "problems"), [
    ("just words", ["must be a mapping", "not str"]),
    ("classes: {usage: {nature: deterministic}}\n", ["the pilot reports", "lost", "payload"]),
    (CLASSES.replace("usage: {nature: deterministic}", "usage: {nature: sometimes}"),
     ["classes.usage.nature", "deterministic", "transient"]),
    (CLASSES.replace("usage: {nature: deterministic}", "Usage Error: {nature: deterministic}"),
     ["classes.Usage Error"]),
    (CLASSES.replace("usage: {nature: deterministic}", "usage: {nature: deterministic, colour: red}"),
     ["classes.usage.colour", "Extra inputs"]),
    (CLASSES + "rules:\n  - {match: {exit_code: 2}, error_class: typo}\n",
     ["rule 1 (rules.0), error_class", "'typo' is not one of the classes"]),
    (CLASSES + "rules:\n  - {match: {exit_code: 2}, error_class: usage}\n  - {match: {}, error_class: usage}\n",
     ["rule 2 (rules.1), match", "needs reported, exit_code or message"]),
    (CLASSES + "rules:\n  - {match: {message: 'no such ('}, error_class: usage}\n",
     ["rule 1 (rules.0), match.message", "not a regular expression"]),
    (CLASSES + "rules:\n  - {match: {exit_code: two}, error_class: usage}\n",
     ["rule 1 (rules.0), match.exit_code.0", "integer"]),
    (CLASSES + "rules:\n  - {match: {reported: payloads}, error_class: usage}\n",
     ["rule 1 (rules.0), match.reported", "'payloads' is not a class the pilot reports"]),
    (CLASSES + "rules:\n  - {match: {exit_code: 2}, class: usage}\n",
     ["rule 1 (rules.0), error_class: Field required", "rule 1 (rules.0), class: Extra inputs"]),
    (CLASSES + "rules: {usage: 2}\n", ["rules: Input should be a valid list"]),
    (CLASSES + "rules:\n  - {match: {exit_code: 2}, error_class: usage\n", ["cannot read the error classes"]),
])
def test_a_bad_classes_file_names_file_rule_and_field(tmp_path: Path, text: str, problems: list[str]) -> None:
    path = tmp_path / "wms-errors.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_error_rules(path)
    assert str(err.value).startswith(f"{path}: ")
    for problem in problems:
        assert problem in str(err.value)


def test_a_missing_classes_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read the error classes"):
        load_error_rules(tmp_path / "nope.yaml")


# --- retry rules on top of the classes
def test_the_packaged_retry_rules(classes: ErrorRules) -> None:
    rules = load_rules(data_file("wms-retry.yaml"), classes)

    def action(code: int, exit_code: int | None = None, diag: str = "", attempt: int = 1) -> str:
        return decide(rules, code, classify(classes, code, exit_code, diag), attempt, 3, 300).action

    memory = decide(rules, 1235, classify(classes, 1235, None, ""), 1, 3, 300)
    assert (memory.action, memory.memory_mb) == ("retry_more_memory", 600)
    assert action(1305, -9) == "retry_more_memory"
    for code in (1099, 1305, 1213, 1137, 1201):
        assert action(code) == "retry_elsewhere", ERROR_CODES[code]
    assert action(1144) == "no_retry"
    assert action(1305, 2, USAGE) == "no_retry"  # a typo costs one attempt
    assert action(1305, 2, "input x.root: no such file") == "no_retry"
    assert action(1305, 3) == "retry_elsewhere"
    last = decide(rules, 1305, classify(classes, 1305, 1, ""), 3, 3, 300)
    assert last.action == "no_retry"
    assert "was the last" in last.reason
    usage = decide(rules, 1305, classify(classes, 1305, 2, USAGE), 1, 3, 300)
    assert "(usage, deterministic): rule 3 says no_retry" in usage.reason


@pytest.mark.parametrize(("text", "problem"), [
    ("rules: [{match: {error_code: 9999}, action: retry}]", "rules.0.match.error_code"),
    ("rules: [{match: {}, action: retry}]", "needs error_code, error_class or nature"),
    ("rules: [{match: {error_class: memory}, action: pray}]", "rules.0.action"),
    ("rules: [{match: {error_class: memory}, action: retry_more_memory, factor: 0.5}]", "rules.0.factor"),
    ("rules: [{match: {error_class: memory}, action: retry, colour: red}]", "rules.0.colour"),
    ("rules: [{match: {nature: sometimes}, action: retry}]", "rules.0.match.nature.0"),
    ("rules: [{match: {error_class: memory}, action: retry}, {match: {error_class: [usage, typo]}, action: retry}]",
     "rule 2 (rules.1), match.error_class: ['typo'] not among the failure classes"),
])
def test_bad_retry_file_names_file_and_field(tmp_path: Path, classes: ErrorRules, text: str, problem: str) -> None:
    path = tmp_path / "retry.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_rules(path, classes)
    assert str(path) in str(err.value)
    assert problem in str(err.value)


# --- grouping for the status commands
def test_normalise_strips_what_differs_per_job() -> None:
    assert normalise("stage-in of user.alice:detsim_00012.root: user.alice:detsim_00012.root: no such file in "
                     "Rucio") == "stage-in of <did>: <did>: no such file in Rucio"
    assert normalise("lease of pilot IHEP-3f2a1b-7 ended at 2026-12-04T16:50:12.123+00:00 without heartbeat") == (
        "lease of pilot <id> ended at <time> without heartbeat")
    assert normalise("error: input /tmp/w/job-12-1/in_0003.root: no such file") == "error: input <path>: no such file"
    assert normalise("used  512.5 MB,\nlimit 400 MB") == "used N MB, limit N MB"
    assert normalise("to CNAF_DISK: root://127.0.0.1:1094//data/x failed") == "to CNAF_DISK: <url> failed"
    assert normalise(USAGE) == USAGE.replace("code 2", "code N")  # the option named stays
    assert len(normalise("x " * 400)) == 300


def test_group_counts_each_reason_with_an_example() -> None:
    jobs = [{"jobid": i, "error_class": "usage", "error_diag": USAGE} for i in range(3, 123)]
    jobs += [{"jobid": 1, "error_class": "missing_input", "error_diag": "input /a/in_1.root: no such file"},
             {"jobid": 2, "error_class": "missing_input", "error_diag": "input /a/in_2.root: no such file"},
             {"jobid": 200, "error_class": "bad_input", "error_diag": "input /a/in_2.root: no such file"},
             {"jobid": 201, "error_class": None, "error_diag": None}]
    groups = group(jobs)
    assert [(g.error_class, g.count, g.example["jobid"]) for g in groups] == [
        ("usage", 120, 3), ("missing_input", 2, 1), ("bad_input", 1, 200), ("unknown", 1, 201)]
    assert groups[1].message == "input <path>: no such file"
    assert groups[0].as_json() == {"error_class": "usage", "message": USAGE.replace("code 2", "code N"),
                                   "count": 120, "example": jobs[0]}
