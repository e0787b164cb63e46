"""`juno-probe programs` on canned answers of the supervisor and of Rucio's heartbeats (the probe against a real
grid: tests/integration/test_grid_lifecycle.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from juno_probes.config import ConfigError, parse
from juno_probes.nagios import Status
from juno_probes.programs import Beat, beats_of, evaluate, evaluate_processes, read_url_file, stale_daemons

NOW = dt.datetime(2026, 12, 4, 12, 0, 0, tzinfo=dt.UTC)


def _proc(name: str, state: str, description: str = "") -> dict[str, str]:
    return {"name": name, "statename": state, "description": description}


def _ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def test_every_program_running_and_every_beat_fresh_is_ok() -> None:
    result = evaluate([_proc("rucio-server", "RUNNING"), _proc("kafka", "STARTING")],
                      [Beat("reaper", _ago(10)), Beat("hermes", _ago(200))], NOW)
    assert result.status == Status.OK
    assert result.message == "2 programs running, every Rucio daemon beat within 300 s"


@pytest.mark.parametrize(("state", "expected"), [
    ("FATAL", Status.CRITICAL), ("BACKOFF", Status.CRITICAL), ("EXITED", Status.CRITICAL),
    ("UNKNOWN", Status.CRITICAL), ("STOPPED", Status.WARNING), ("STOPPING", Status.WARNING),
])
def test_a_program_that_does_not_run_is_named(state: str, expected: Status) -> None:
    status, notes = evaluate_processes([_proc("rucio-server", "RUNNING"),
                                        _proc("rucio-conveyor-submitter", state, "Exited too quickly")])
    assert status == expected
    assert notes == [f"rucio-conveyor-submitter {state} (Exited too quickly)"]


def test_a_fatal_program_outranks_a_stopped_one() -> None:
    result = evaluate([_proc("b", "STOPPED"), _proc("a", "FATAL")], [], NOW)
    assert result.status == Status.CRITICAL
    assert result.message == "a FATAL; b STOPPED"
    assert result.perfdata == {"programs": "2", "down": "2"}


def test_only_the_newest_heartbeat_of_a_daemon_counts() -> None:
    beats = [Beat("reaper", _ago(900)), Beat("reaper", _ago(5)),  # restarted: its old pid's row lingers
             Beat("undertaker", _ago(301)), Beat("hermes", _ago(300))]
    assert stale_daemons(beats, NOW) == {"undertaker": 301.0}
    assert stale_daemons(beats, NOW, stale_s=1000) == {}


def test_a_silent_daemon_is_critical_even_when_its_program_runs() -> None:
    result = evaluate([_proc("rucio-judge-evaluator", "RUNNING")], [Beat("judge-evaluator", _ago(612))], NOW)
    assert result.status == Status.CRITICAL
    assert result.message == "rucio-judge-evaluator silent for 612 s"


def test_heartbeat_rows_of_the_rest_api_and_of_the_table() -> None:
    rows = [
        {"readable": "reaper", "updated_at": "Fri, 04 Dec 2026 11:59:00 UTC"},  # GET /heartbeats
        {"readable": "hermes", "updated_at": "2026-12-04T11:58:00"},  # ISO, naive: UTC
        {"readable": "judge-cleaner", "updated_at": dt.datetime(2026, 12, 4, 11, 57).replace(tzinfo=None)},  # noqa: DTZ001 - the table's, naive
        {"readable": "undertaker", "updated_at": "yesterday"},  # not a time: skipped
        {"readable": None, "updated_at": "2026-12-04T11:58:00"},  # no name: skipped
        {"readable": "abacus-rse"},  # no time: skipped
    ]
    assert beats_of(rows) == [
        Beat("reaper", dt.datetime(2026, 12, 4, 11, 59, tzinfo=dt.UTC)),
        Beat("hermes", dt.datetime(2026, 12, 4, 11, 58, tzinfo=dt.UTC)),
        Beat("judge-cleaner", dt.datetime(2026, 12, 4, 11, 57, tzinfo=dt.UTC)),
    ]


def test_the_probe_can_be_scheduled_and_an_unknown_probe_cannot() -> None:
    config = parse({"probes": {"programs": {"interval_s": 30}}}, "probes.yaml")
    assert config.probes["programs"].interval_s == 30
    with pytest.raises(ConfigError, match="unknown probe program "):
        parse({"probes": {"program": {}}}, "probes.yaml")


def test_the_supervisor_url_file_must_be_private(tmp_path: Path) -> None:
    url = tmp_path / "supervisor.url"
    url.write_text("http://juno:secret@127.0.0.1:23099/RPC2\n")
    url.chmod(0o600)
    assert read_url_file(url) == "http://juno:secret@127.0.0.1:23099/RPC2"
    assert read_url_file(None) is None
    url.chmod(0o640)
    with pytest.raises(ValueError, match="others may read it"):
        read_url_file(url)
    with pytest.raises(ValueError, match="cannot read the supervisor's URL"):
        read_url_file(tmp_path / "missing")
