"""The statistics keeper's thresholds (pure logic; the passes on a real PostgreSQL are in integration/)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from juno_dcs.grid.dbstats import Action, TableStats, Thresholds, due


def stats(live: int = 0, dead: int = 0, modified: int = 0, analyzed: bool = True) -> TableStats:
    return TableStats(oid=1, schema="rucio", table="dids", live=live, dead=dead, modified=modified, analyzed=analyzed)


def test_a_quiet_table_needs_nothing() -> None:
    assert due(stats(live=100_000, modified=100), Thresholds()) is None
    assert due(stats(), Thresholds()) is None  # empty and never analyzed: nothing to learn


def test_changes_past_base_plus_scale_call_for_analyze() -> None:
    limits = Thresholds(analyze_base=500, analyze_scale=0.05)
    assert due(stats(live=10_000, modified=1000), limits) is None  # 500 + 500
    action, reason = due(stats(live=10_000, modified=1001), limits) or (None, "")
    assert action is Action.ANALYZE
    assert "1001 rows changed" in reason
    assert "> 1000" in reason


def test_dead_rows_call_for_vacuum_which_also_analyzes() -> None:
    limits = Thresholds(vacuum_base=2000, vacuum_scale=0.1)
    action, reason = due(stats(live=10_000, dead=3001, modified=10_000), limits) or (None, "")
    assert action is Action.VACUUM
    assert reason == "3001 dead rows > 3000"


def test_a_table_never_analyzed_is_analyzed_once_it_has_changes() -> None:
    action, reason = due(stats(live=10, modified=10, analyzed=False), Thresholds()) or (None, "")
    assert action is Action.ANALYZE
    assert reason == "never analyzed"


@pytest.mark.parametrize("bad", [{"analyze_base": -1}, {"vacuum_scale": -0.1}, {"analyze_scale": 11},
                                 {"vacuum_base": "many"}, {"unknown": 1}])
def test_bad_thresholds_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Thresholds.model_validate(bad)
