"""jsub's splitters and $(var) substitution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from juno_dcs.jsub.errors import SplitError
from juno_dcs.jsub.split import split, split_by_event, substitute
from juno_dcs.jsub.taskfile import SplitByEvent, parse_task

STEP = {"steps": ["run"], "run": {"type": "cmd", "cmd": "true"}}


def task(splitter: dict[str, Any], tmp_path: Path | None = None) -> Any:
    path = str((tmp_path or Path("/tmp")) / "t.yaml")
    return parse_task({"taskName": "t", "splitter": splitter, "workflow": STEP}, path)


def rows(splitter: dict[str, Any], tmp_path: Path | None = None, **kw: Any) -> list[dict[str, str]]:
    return [s.vars for s in split(task(splitter, tmp_path), {}, **kw).subjobs]


def test_two_groups_are_crossed_and_members_zipped() -> None:
    out = rows({"mode": "splitByJobvars", "jobvarLists": {
        "particle": {"type": "enumerate", "list": ["e-", "gamma"], "group": "p"},
        "pdg": {"type": "enumerate", "list": [11, 22], "group": "p"},
        "energy": {"type": "range", "first": 1, "last": 3, "group": "e"},
    }})
    got = [(r["particle"], r["pdg"], r["energy"]) for r in out]
    assert got == [("e-", "11", "1"), ("e-", "11", "2"), ("e-", "11", "3"),
                   ("gamma", "22", "1"), ("gamma", "22", "2"), ("gamma", "22", "3")]
    assert [r["jobid"] for r in out] == ["1", "2", "3", "4", "5", "6"]
    assert [r["seed"] for r in out] == ["1", "2", "3", "4", "5", "6"]


def test_ungrouped_unbounded_range_follows_the_product_like_jsub_103() -> None:
    out = rows({"mode": "splitByJobvars", "evtMaxPerJob": 5000, "jobvarLists": {
        "nuclear": {"type": "enumerate", "list": ["U-238", "Th-232", "K-40"], "group": "nuclear"},
        "subjob": {"type": "range", "length": 4, "group": "same_nuclear"},
        "seed": {"type": "range", "first": 10001},
        "name": {"type": "composite_string", "value": "$(nuclear).$(subjob)"},
    }})
    assert len(out) == 12
    assert [r["seed"] for r in out] == [str(10001 + i) for i in range(12)]
    assert out[5]["name"] == "Th-232.2"
    assert out[5]["evtmax"] == "5000"


def test_zipped_lengths_mismatch_is_a_clear_error() -> None:
    with pytest.raises(SplitError, match=r"group 'p' zips its variables, which needs equal lengths: "
                                         r"particle has 2, pdg has 3"):
        rows({"mode": "splitByJobvars", "jobvarLists": {
            "particle": {"type": "enumerate", "list": ["e-", "gamma"], "group": "p"},
            "pdg": {"type": "enumerate", "list": [11, 22, 13], "group": "p"},
        }})


def test_ungrouped_list_must_match_the_product() -> None:
    with pytest.raises(SplitError, match=r"zipped with the product of the groups \(4 sub-jobs\), but x has 3"):
        rows({"mode": "splitByJobvars", "jobvarLists": {
            "a": {"type": "range", "length": 2, "group": "g1"},
            "b": {"type": "range", "length": 2, "group": "g2"},
            "x": {"type": "enumerate", "list": [1, 2, 3]},
        }})


def test_no_length_anywhere_is_an_error() -> None:
    with pytest.raises(SplitError, match="the number of sub-jobs is unknown"):
        rows({"mode": "splitByJobvars", "jobvarLists": {"seed": {"type": "range", "first": 3}}})


def test_composite_cycle_is_an_error() -> None:
    with pytest.raises(SplitError, match="cycle: a, b"):
        rows({"mode": "splitByJobvars", "jobvarLists": {
            "n": {"type": "range", "length": 2},
            "a": {"type": "composite_string", "value": "$(b)"},
            "b": {"type": "composite_string", "value": "$(a)"},
        }})


def test_lines_in_file_relative_to_the_task_file(tmp_path: Path) -> None:
    (tmp_path / "runs.txt").write_text("1001\n\n1002\n")
    out = rows({"mode": "splitByJobvars", "jobvarLists": {"run": {"type": "lines_in_file", "file": "runs.txt"}}},
               tmp_path)
    assert [r["run"] for r in out] == ["1001", "1002"]


def test_max_subjobs_cuts_with_a_warning() -> None:
    result = split(task({"mode": "splitByJobvars", "maxSubJobs": 2,
                         "jobvarLists": {"i": {"type": "range", "length": 5}}}), {})
    assert len(result.subjobs) == 2
    assert "5 sub-jobs cut to the first 2" in result.warnings[0]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"totalEvents": 2500, "evtMaxPerJob": 1000}, [(1000, 0), (1000, 1000), (500, 2000)]),
    ({"evtMaxPerJob": 100, "njobs": 3}, [(100, 0), (100, 100), (100, 200)]),
    ({"totalEvents": 10, "njobs": 3}, [(4, 0), (3, 4), (3, 7)]),
    ({"totalEvents": 3000, "evtMaxPerJob": 1000, "njobs": 3}, [(1000, 0), (1000, 1000), (1000, 2000)]),
])
def test_split_by_event_arithmetic(fields: dict[str, int], expected: list[tuple[int, int]]) -> None:
    splitter = SplitByEvent.model_validate({"mode": "splitByEvent", "seed": 7, **fields})
    out = split_by_event(splitter)
    assert [(int(r["evtmax"]), int(r["skipevt"])) for r in out] == expected
    assert [int(r["seed"]) for r in out] == [7 + i for i in range(len(expected))]
    total = fields.get("totalEvents")
    if total:
        assert sum(int(r["evtmax"]) for r in out) == total


def test_split_by_event_inconsistent() -> None:
    splitter = SplitByEvent.model_validate({"mode": "splitByEvent", "totalEvents": 3000, "evtMaxPerJob": 1000,
                                            "njobs": 4})
    with pytest.raises(SplitError, match="makes 3 sub-jobs, not njobs 4"):
        split_by_event(splitter)


def test_split_by_dataset_chunks_files_into_inputs() -> None:
    files = [f"user.alice:f{i}.root" for i in range(5)]
    result = split(task({"mode": "splitByDataset", "dataset": "user.alice:ds", "filesPerJob": 2}), {},
                   list_files=lambda did: files if did == "user.alice:ds" else [])
    assert [s.inputs for s in result.subjobs] == [files[0:2], files[2:4], files[4:5]]
    assert result.subjobs[0].vars["input"] == "f0.root f1.root"
    assert result.subjobs[2].vars["nfiles"] == "1"


def test_split_by_dataset_empty_is_an_error() -> None:
    with pytest.raises(SplitError, match=r"user\.alice:ds has no files"):
        split(task({"mode": "splitByDataset", "dataset": "user.alice:ds"}), {}, list_files=lambda did: [])


def test_substitute() -> None:
    assert substitute("a $(x) b $(y)$(x)", {"x": "1", "y": "2"}, "f") == "a 1 b 21"
    assert substitute("echo $$(date) ${HOME} $HOME", {}, "f") == "echo $(date) ${HOME} $HOME"


def test_substitute_unknown_variable_names_the_field_and_the_known_ones() -> None:
    with pytest.raises(SplitError, match=r"workflow\.ana\.args: unknown variable \$\(energy\); known: jobid, seed"):
        substitute("--e $(energy)", {"jobid": "1", "seed": "2"}, "workflow.ana.args")


def test_substitute_leaves_other_shell_syntax_and_hints_the_escape() -> None:
    assert substitute("x $(ls -l) $(( 1 + $(n) ))", {"n": "2"}, "f") == "x $(ls -l) $(( 1 + 2 ))"
    with pytest.raises(SplitError, match=r"unknown variable \$\(date\); known: none \(for the shell's command "
                                         r"substitution write \$\$\(date\)\)"):
        substitute("x $(date)", {}, "workflow.s.cmd")
