"""benchmarks/report.py: results in, Markdown rows out; aims, dates and machines, missing fields."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks import report
from benchmarks.machine import stamp

WMS: dict[str, Any] = {
    "submit_10k_s": 0.648, "getjob_per_s": 1234.6, "production_200_s": 709.8,
    "production": {"production_s": 709.8, "jobs": 200, "state": "done",
                   "steps_closed_at_s": {"detsim": 171.4, "elecsim": 532.1, "cal": 633.6, "rec": 699.0}},
    "runs": 3, "jobs": 10000, "pilots": 50, "server_workers": 2, "cpus": 2,
    "submit_runs_s": [0.536, 0.747, 0.648], "getjob_runs_per_s": [1234.6, 1289.7, 1124.0],
}


def by_key(rows: list[tuple[str, str, str, str, str]]) -> dict[str, tuple[str, str, str, str, str]]:
    """Rows by the figure key named in backticks at the end of their label."""
    return {row[0].rsplit("`", 2)[-2]: row for row in rows if row[0].endswith("`)")}


def test_wms_rows_with_values_samples_and_default_aims() -> None:
    rows = by_key(report.rows("wms", WMS, committed="2026-12-02"))
    assert rows["submit_10k_s"] == (
        "a task of 10,000 jobs through POST /v1/tasks (`submit_10k_s`)", "0.65 s (runs: 0.54, 0.75, 0.65)",
        "about 1 s", "2026-12-02 (committed)", "2 cores, loop not recorded")
    assert rows["getjob_per_s"][1:3] == ("1,235 jobs/s (runs: 1,235, 1,290, 1,124)", ">= 1,000 jobs/s")
    assert rows["production_200_s"][1:3] == ("710 s", "")


def test_several_values_in_one_row() -> None:
    steps = report.rows("wms", WMS)[-1]
    assert steps[:2] == ("its steps closed at: detsim / elecsim / cal / rec", "171 / 532 / 634 / 699 s")


def test_an_aim_in_the_result_wins_over_the_table() -> None:
    rows = by_key(report.rows("wms", {**WMS, "aims": {"getjob_per_s": ">= 2,000 jobs/s"}}))
    assert rows["getjob_per_s"][2] == ">= 2,000 jobs/s"
    assert rows["submit_10k_s"][2] == "about 1 s"


def test_a_stamped_result_shows_its_date_and_machine() -> None:
    result = {**WMS, "date": "2027-01-05", "machine": {"cores": 4, "loop_20m_s": 1.23, "python": "3.11.2"}}
    row = report.rows("wms", result, committed="2026-12-02")[0]
    assert row[3:] == ("2027-01-05", "4 cores, loop 1.23 s")


def test_no_date_no_commit_no_cores() -> None:
    row = report.rows("ingest", {"files_per_s": 1029.8, "latency_p99_s": 0.749})[0]
    assert row[2:] == (">= 1,000 files/s", "not recorded", "not recorded")


def test_missing_figures_and_unfilled_labels() -> None:
    """A partial run (`transfers.py --only tpc`) says which figures it lacks; labels keep unknown fields."""
    rows = report.rows("transfers", {"benchmark": "transfers", "cpus": 2, "tpc_ratio": 0.679})
    assert rows[0][1:3] == ("0.68", ">= 0.8")
    rule = by_key(rows)["rule_files_per_s"]
    assert rule[:3] == ("{rule_files:,} files of 1 MB, one rule IHEP_DISK -> CNAF_DISK (`rule_files_per_s`)",
                        "not in the results", ">= 50 files/s")


def test_part_of_a_row_missing() -> None:
    result = {"points": [{}, {}, {"rtt_ms": 180, "direct": {"warm_p50_ms": 1100.2}, "squid": {"warm_p50_ms": 4.01}}]}
    first = report.rows("conditions", result)[0]
    assert first[:2] == ("a job's warm p50 at 180 ms: direct MariaDB / the service / the site's Squid",
                         "1,100 / ? / 4.0 ms")


def test_list_items_by_number() -> None:
    assert report.lookup({"points": [{"a": 1}, {"a": 2}]}, "points.1.a") == 2
    assert report.lookup({"points": [{"a": 1}]}, "points.3.a") is None


def test_an_unknown_benchmark_lists_its_numbers() -> None:
    rows = report.rows("new", {"benchmark": "new", "cpus": 8, "ops_per_s": 12.34, "mode": "x", "ok": True})
    assert rows == [("`ops_per_s`", "12.3", "", "not recorded", "8 cores, loop not recorded")]


def test_an_error_result() -> None:
    assert report.rows("conditions", {"error": "no MariaDB"})[0][:2] == ("error", "no MariaDB")


@pytest.mark.parametrize(("value", "text"), [
    (17.95, "18.0"), (288.5, "289"), (1029.8, "1,030"), (100000, "100,000"), (0.749, "0.75"), (0.096, "0.096"),
    (4.38, "4.4"), (0.3, "0.3"),
])
def test_numbers_as_the_readme_writes_them(value: float, text: str) -> None:
    assert report.number(value) == text


def test_tables_in_order_and_between_the_markers() -> None:
    generated = report.report({"wms": (WMS, None), "grid_up": ({"runs": 3, "median": {"up_cold_s": 17.95}}, None)})
    assert generated.index("benchmarks/grid_up.py") < generated.index("benchmarks/wms.py")
    assert "| figure | value | aim | date | machine |" in generated
    assert "Median of 3 runs on fresh homes." in generated
    readme = f"# R\n\n## Figures\n\nIntro.\n\n{report.BEGIN}\nold\n{report.END}\n\n## Development\n"
    written = report.replace_between(readme, generated)
    assert written.startswith("# R\n\n## Figures\n\nIntro.\n\n" + report.BEGIN + "\n" + generated)
    assert written.endswith(report.END + "\n\n## Development\n")
    assert report.replace_between(written, generated) == written


def test_no_markers() -> None:
    with pytest.raises(ValueError, match="figures:begin"):
        report.replace_between("# R\n", "x")


def test_stamp_adds_date_and_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("benchmarks.machine.loop_seconds", lambda: 1.5)
    stamped = stamp({"benchmark": "x"})
    assert stamped["benchmark"] == "x"
    assert len(stamped["date"]) == 10
    assert stamped["machine"]["loop_20m_s"] == 1.5
    assert report.machine_text(stamped) == f"{stamped['machine']['cores']} cores, loop 1.5 s"
