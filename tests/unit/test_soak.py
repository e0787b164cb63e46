"""benchmarks/soak.py's arithmetic: latency by window, growth per day, whether the figures held."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.soak import _held, _latency, verdict


def test_latency_counts_only_the_windows_messages(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    journal.write_text("\n".join(json.dumps({"name": n, "at": at}) for n, at in
                                 (("a", 10.5), ("b", 21.0), ("c", 32.0), ("b", 40.0))) + "\n")
    published = {"a": 10.0, "b": 20.0, "c": 30.0, "d": 31.0}
    got = _latency(published, journal, 15.0, 35.0)
    assert got["published"] == 3  # b, c, d
    assert got["registered"] == 2  # d never registered; b's replay does not count twice
    assert got["latency_p50_s"] == 1.5
    assert got["latency_p99_s"] == 2.0
    assert _latency(published, tmp_path / "none", 0, 100)["latency_p99_s"] is None


def test_held_allows_twenty_percent_or_a_fifth_of_a_second() -> None:
    assert _held(1.0, 1.2)
    assert not _held(1.0, 1.25)
    assert _held(0.1, 0.3)  # small figures: 0.2 s of slack
    assert not _held(0.1, 0.31)
    assert _held(None, 1.0) is None


def test_verdict_extrapolates_growth_to_a_day() -> None:
    first = {"tables": {"a": 100, "b": 50}, "database_bytes": 1000, "grid_rss_bytes": 10, "latency_p99_s": 0.5,
             "raw_status_day_s": 0.8, "dashboard_blocks_s": 0.3}
    last = {"tables": {"a": 300, "b": 50, "c": 10}, "database_bytes": 1500, "grid_rss_bytes": 12,
            "latency_p99_s": 0.9, "raw_status_day_s": 0.8, "dashboard_blocks_s": None}
    last["registered"] = 250
    got = verdict([first, last], hours=0.5, per_juno_day=1000)
    assert got["database_bytes_per_day"] == 500 * 48
    assert got["database_bytes_per_juno_day"] == 500 * 4
    assert got["grid_rss_bytes_change"] == 2
    assert got["grid_rss_bytes_per_day"] == 2 * 48
    assert got["tables_bytes_per_day"] == {"a": 200 * 48, "c": 10 * 48}
    assert got["held"] == {"latency_p99_s": False, "raw_status_day_s": True, "dashboard_blocks_s": None}
