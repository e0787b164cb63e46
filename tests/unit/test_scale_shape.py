"""The shape of the scale benchmark's catalogue and its aims (benchmarks/scale_shape.py, scale_aims.py)."""

from __future__ import annotations

import pytest
from benchmarks.scale_aims import aims
from benchmarks.scale_shape import (
    UNIT_FILES,
    big_dataset,
    expected_counts,
    new_block,
    unit,
    units_between,
)

from juno_rucio_policy.naming import parse


def test_a_unit_holds_its_files_in_juno_names() -> None:
    datasets = unit(7, ("user.alice", "user.bob"))
    assert sum(len(d.files) for d in datasets) == UNIT_FILES
    for d in datasets:
        if d.scope in ("raw", "mc"):
            parse(d.scope, d.name, collection=True)
            for f in d.files[:3]:
                parse(d.scope, f.name, collection=False)
        assert len({f.name for f in d.files}) == len(d.files)
        assert all(len(f.adler32) == 8 and f.bytes > 0 for f in d.files)
    counts = {"raw": 0, "mc": 0, "user": 0}
    for d in datasets:
        counts["user" if d.scope.startswith("user.") else d.scope] += len(d.files)
    assert counts == expected_counts(UNIT_FILES)
    assert {d.scope for d in datasets if d.scope.startswith("user.")} == {"user.alice", "user.bob"}


def test_units_are_disjoint_and_the_same_whoever_builds_them() -> None:
    names = [f.name for u in (0, 1) for d in unit(u, ("user.a",)) for f in d.files]
    assert len(names) == len(set(names))
    assert unit(3, ("user.a",)) == unit(3, ("user.a",))
    blocks = [d.name for u in (0, 1) for d in unit(u, ("user.a",)) if d.scope == "raw"]
    assert blocks[0] == "block.20200101.physics"
    assert len(set(blocks)) == 12


def test_units_between_and_the_extra_datasets() -> None:
    assert units_between(20_000, 50_000) == range(2, 5)
    with pytest.raises(ValueError, match="units of"):
        units_between(0, 15_000)
    block = new_block("new3")
    assert block.name.endswith(".new3")
    assert len(block.files) == 1000
    parse("raw", block.name, collection=True)
    parse("raw", block.files[0].name, collection=False)
    assert len(big_dataset("rule001", 10_000).files) == 10_000


def test_aims_met_and_missed() -> None:
    points = [{"files": 0, "files_per_s": 1000.0, "raw_status_day_s": 0.5},
              {"files": 4_000_000, "files_per_s": 750.0, "raw_status_day_s": 0.9, "raw_status_json_all_s": 30.0}]
    jobs = [{"jobs": 0, "getjob_per_s": 1000.0}, {"jobs": 2_000_000, "getjob_per_s": 900.0, "prod_status_s": 0.2}]
    by = {a["figure"]: a for a in aims(points, jobs)}
    assert by["files_per_s"]["drop"] == 0.25
    assert not by["files_per_s"]["met"]
    assert by["getjob_per_s"]["met"]
    assert by["raw_status_day_s"]["met"]
    assert not by["raw_status_json_all_s"]["met"]
    assert not by["policy_apply_block_s"]["met"]  # not measured: not met
    assert by["prod_status_s"]["met"]
