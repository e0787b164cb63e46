"""The data challenge's pure parts: sizes, throughput from samples, phases, the service's record, the report,
and the command's answers to bad input (no grid needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from juno_dcs.challenge import report, service
from juno_dcs.challenge.measure import LinkSample, Tick, link_phases, parse_size, rate_series, stage_phases
from juno_dcs.challenge.run import ChallengeOptions, ChallengeResult, LinkResult
from juno_dcs.cli import main
from juno_dcs.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "size"),
    [("100MB", 100_000_000), ("1GB", 10**9), ("1gb", 10**9), ("512KiB", 512 * 1024), ("2 MiB", 2 * 2**20),
     ("1.5GB", 1_500_000_000), ("4096", 4096), ("10B", 10), ("1TB", 10**12), ("3k", 3000)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "phrase"),
    [("", "not a size"), ("MB", "not a size"), ("-5MB", "not a size"), ("12 parsecs", "unknown unit 'parsecs'"),
     ("0MB", "less than one byte"), ("0.1B", "less than one byte"), ("1e3MB", "not a size")],
)
def test_bad_sizes(text: str, phrase: str) -> None:
    with pytest.raises(ConfigError, match=phrase):
        parse_size(text)


def test_rate_series_of_a_steady_link() -> None:
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    cumulative = [0, 50_000_000, 100_000_000, 150_000_000, 200_000_000, 250_000_000]  # 100 MB/s
    series = rate_series(times, cumulative, window=1.0)
    assert [t for t, _ in series] == times[1:]
    assert all(rate == pytest.approx(100.0) for _, rate in series)


def test_rate_series_averages_over_the_window() -> None:
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    cumulative = [0, 0, 100_000_000, 100_000_000, 100_000_000]  # one burst between 1 and 2 s
    series = dict(rate_series(times, cumulative, window=2.0))
    assert series[2.0] == pytest.approx(50.0)  # 100 MB over the 2 s window
    assert series[3.0] == pytest.approx(50.0)
    assert series[4.0] == pytest.approx(0.0)


def test_rate_series_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        rate_series([0.0, 1.0], [0])
    with pytest.raises(ValueError, match="positive"):
        rate_series([0.0, 1.0], [0, 1], window=0)


def _tick(t: float, **links: tuple[int, int, int, int]) -> Tick:
    return Tick(t, {name: LinkSample(*values) for name, values in links.items()})


TOTAL = 300


def _ticks() -> list[Tick]:
    # (bytes, files_ok, active, queued) for links A and B; B is submitted later and finishes later
    return [
        _tick(1.0, A=(0, 0, 0, 0), B=(0, 0, 0, 0)),
        _tick(1.5, A=(0, 0, 0, 2), B=(0, 0, 0, 0)),
        _tick(2.0, A=(100, 0, 2, 1), B=(0, 0, 0, 3)),
        _tick(2.5, A=(300, 2, 1, 0), B=(150, 0, 2, 1)),
        _tick(3.0, A=(300, 3, 0, 0), B=(300, 1, 1, 0)),
        _tick(3.5, A=(300, 3, 0, 0), B=(300, 3, 0, 0)),
    ]


def test_link_phases_from_samples() -> None:
    phases = link_phases(_ticks(), "A", created=1.0, ok=3.0, total_bytes=TOTAL)
    assert (phases.submitted, phases.first_byte, phases.last_byte, phases.ok) == (1.5, 2.0, 2.5, 3.0)
    assert phases.submission_s == pytest.approx(0.5)
    assert phases.startup_s == pytest.approx(0.5)
    assert phases.copying_s == pytest.approx(0.5)
    assert phases.finishing_s == pytest.approx(0.5)
    assert phases.total_s == pytest.approx(2.0)


def test_a_link_done_between_two_samples_is_bounded_by_its_ok() -> None:
    ticks = [_tick(0.5, A=(0, 0, 0, 0)), _tick(1.0, A=(0, 0, 0, 0))]
    phases = link_phases(ticks, "A", created=0.0, ok=1.2, total_bytes=TOTAL)
    assert (phases.submitted, phases.first_byte, phases.last_byte) == (1.2, 1.2, 1.2)


def test_stage_phases_span_the_links() -> None:
    a = link_phases(_ticks(), "A", created=1.0, ok=3.0, total_bytes=TOTAL)
    b = link_phases(_ticks(), "B", created=1.0, ok=3.5, total_bytes=TOTAL)
    stage = stage_phases([a, b])
    assert (stage.created, stage.submitted, stage.first_byte, stage.last_byte, stage.ok) == (1.0, 1.5, 2.0, 3.0, 3.5)
    with pytest.raises(ValueError, match="at least one link"):
        stage_phases([])


def _result(mode: str = "parallel") -> ChallengeResult:
    options = ChallengeOptions(files=3, size=100, mode="each" if mode == "each" else "parallel",
                               destinations=("A", "B"))
    ticks = _ticks()
    links = []
    for name, ok, bare_s in (("A", 3.0, 1.0), ("B", 3.5, 1.5)):
        phases = link_phases(ticks, name, 1.0, ok, TOTAL)
        links.append(LinkResult("IHEP_DISK", name, 3, TOTAL, phases.total_s, bare_s, 0.5, phases, 2,
                                service.ServiceLink(3, 1.0, 0.2, 0.4, "both")))
    stages = [stage_phases([link.phases for link in links])]
    return ChallengeResult(options, 2, "block.20261201.dc00000000", 0.1, links, stages, [1.5], 1.0, ticks,
                           {"A": "r1", "B": "r2"}, "r0")


def test_result_figures_and_breakdown() -> None:
    result = _result()
    figures = result.as_json()
    assert figures["total_bytes"] == 600
    assert figures["total_seconds"] == pytest.approx(2.5)  # rule made at 1.0, last OK at 3.5
    assert figures["bare_seconds"] == pytest.approx(1.5)
    assert figures["challenge_ratio"] == pytest.approx(1.5 / 2.5)
    assert [link["destination"] for link in figures["links"]] == ["A", "B"]
    assert figures["links"][0]["mb_per_s"] == pytest.approx(300 / 1e6 / 2.0, abs=1e-3)
    phases = figures["phases"]
    assert phases["submission_s"] == pytest.approx(0.5)
    assert phases["copying_s"] == pytest.approx(1.0)
    assert phases["copy_excess_s"] == pytest.approx(-0.5)
    assert phases["finishing_s"] == pytest.approx(0.5)
    assert figures["links"][1]["service"] == {"files": 3, "submission_spread_s": 1.0, "mean_wait_s": 0.2,
                                              "mean_copy_s": 0.4, "verify_checksum": "both"}


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="--files 0"):
        ChallengeOptions(files=0, size=1, mode="parallel")
    with pytest.raises(ConfigError, match="--concurrency 0"):
        ChallengeOptions(files=1, size=1, mode="parallel", concurrency=0)
    with pytest.raises(ConfigError, match="other RSEs than the source"):
        ChallengeOptions(files=1, size=1, mode="each", destinations=("IHEP_DISK",))
    assert ChallengeOptions(files=1, size=1, mode="each").stages() == [("CNAF_DISK",), ("JINR_DISK",),
                                                                      ("IN2P3_DISK",)]
    assert ChallengeOptions(files=1, size=1, mode="parallel").stages() == [("CNAF_DISK", "JINR_DISK", "IN2P3_DISK")]


def test_service_record_is_summarised_per_link() -> None:
    jobs = {"/jobs": [{"job_id": "j1", "submit_time": "2026-12-01T10:00:00", "verify_checksum": "both"},
                      {"job_id": "j2", "submit_time": "2026-12-01T10:00:03", "verify_checksum": "both"},
                      {"job_id": "j3", "submit_time": "2026-12-01T09:00:00", "verify_checksum": "none"}]}

    ses = {"source_se": "davs://localhost:1", "dest_se": "davs://localhost:2"}

    def get(path: str, params: dict[str, Any]) -> Any:
        if path == "/jobs":
            assert params["dest_se"] == "davs://localhost:2"
            return jobs["/jobs"]
        assert path == "/jobs/j1,j2,j3"
        return [{"job_id": "j1", "files": [{"source_surl": "davs://h/raw/RUN.000000.dcabc.00001", **ses, "file_state":
                                            "FINISHED", "start_time": "2026-12-01T10:00:01",
                                            "finish_time": "2026-12-01T10:00:05"}]},
                {"job_id": "j2", "files": [{"source_surl": "davs://h/raw/RUN.000000.dcabc.00002", **ses, "file_state":
                                            "FINISHED", "start_time": "2026-12-01T10:00:04",
                                            "finish_time": "2026-12-01T10:00:06"}]},
                {"job_id": "j3", "files": [{"source_surl": "davs://h/raw/someone-else", **ses, "file_state": "FINISHED",
                                            "start_time": None, "finish_time": None}]}]

    files = service.fetch_files(get, "davs://localhost:1", ["davs://localhost:2"], "dcabc")
    assert [f.submitted for f in files] == [dt.datetime(2026, 12, 1, 10, 0, 0, tzinfo=dt.UTC),
                                            dt.datetime(2026, 12, 1, 10, 0, 3, tzinfo=dt.UTC)]
    summary = service.summarise(files)["davs://localhost:2"]
    assert (summary.files, summary.submission_spread_s, summary.mean_wait_s, summary.mean_copy_s,
            summary.verify_checksum) == (2, 3.0, 1.0, 3.0, "both")
    assert service.submission_spread(files) == 3.0
    assert service.submission_spread([]) == 0.0


def test_report_has_each_link_and_its_figures(tmp_path: Path) -> None:
    result = _result()
    index = report.write(result, tmp_path)
    assert index.parent.parent == tmp_path / "reports"
    assert index.parent.name.startswith("challenge-")
    page = index.read_text()
    for link in ("IHEP_DISK -&gt; A", "IHEP_DISK -&gt; B"):
        assert link in page
    for png in (report.THROUGHPUT_PNG, report.ARRIVED_PNG):
        assert f'src="{png}"' in page
        assert (index.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (index.parent / "result.json").is_file()
    assert report.write(result, tmp_path) != index  # a second report in the same second gets its own directory


def test_throughput_series_include_the_total() -> None:
    curves = report.series(_result())
    assert set(curves) == {"A", "B", "total"}
    for t, rate in curves["total"]:
        at = {name: dict(points)[t] for name, points in curves.items() if name != "total"}
        assert rate == pytest.approx(sum(at.values()))


@pytest.mark.parametrize(
    ("args", "phrase"),
    [(["--size", "lots"], "--size: 'lots' is not a size"),
     (["--size", "3 furlongs"], "--size: '3 furlongs': unknown unit"),
     (["--files", "0"], "Invalid value for '--files'"),
     (["--mode", "sideways"], "Invalid value for '--mode'"),
     (["--concurrency", "0"], "Invalid value for '--concurrency'"),
     (["--interval", "0"], "Invalid value for '--interval'")],
)
def test_bad_input_exits_2_naming_the_option(args: list[str], phrase: str, tmp_path: Path) -> None:
    answer = CliRunner().invoke(main, ["challenge", "--home", str(tmp_path / "none"), *args])
    assert answer.exit_code == 2, answer.output
    assert phrase in answer.output


def test_no_grid_is_a_clear_error(tmp_path: Path) -> None:
    answer = CliRunner().invoke(main, ["challenge", "--home", str(tmp_path / "none"), "--files", "1"])
    assert answer.exit_code == 1, answer.output
    assert "no grid in" in answer.output
