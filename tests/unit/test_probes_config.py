"""The probes' configuration file and command line: bad input gets a clear error and exit 3 (UNKNOWN)."""

from __future__ import annotations

from pathlib import Path

import pytest

from juno_probes import cli, config, schedule, services
from juno_probes.config import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "probes.yaml"
    path.write_text(text)
    return path


def test_a_good_file_round_trips(tmp_path: Path) -> None:
    model = config.ProbesConfig(monitor_dsn="postgresql://x@h/db", fts_url="http://f", squids={"IHEP": "http://s"},
                                probes={"tpc": config.ProbeSchedule(interval_s=600, args=["--modes", "pull"])})
    loaded = config.load(write(tmp_path, config.dump(model, "header")))
    assert loaded == model
    assert loaded.probes["tpc"].enabled


@pytest.mark.parametrize(("text", "message"), [
    ("fts_url: http://f\nbogus: 1\n", "bogus: Extra inputs are not permitted"),
    ("probes:\n  tpc:\n    interval: 5\n", "probes.tpc.interval: Extra inputs are not permitted"),
    ("probes:\n  tpc:\n    interval_s: -1\n", "probes.tpc.interval_s: Input should be greater than 0"),
    ("probes:\n  nagios: {}\n", "unknown probe nagios"),
    ("schedule: 'a b'\n", "schedule: String should match pattern"),
    ("- a list\n", "expected a mapping of settings, got list"),
    ("fts_url: [unclosed\n", "not valid YAML"),
])
def test_bad_files_are_refused_with_where(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="^" + str(path).replace(".", r"\.") + ": ") as info:
        config.load(path)
    assert message in str(info.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the probes configuration"):
        config.load(tmp_path / "nope.yaml")


def test_bad_probe_arguments_in_the_schedule_are_refused() -> None:
    with pytest.raises(ConfigError,
                       match=r"probes\.tpc\.args: juno-probe tpc: Invalid value for '--modes': unknown mode x"):
        schedule.probe_args("tpc", config.ProbeSchedule(args=["--modes", "x"]))


def test_the_scheduler_needs_a_database() -> None:
    with pytest.raises(ConfigError, match="needs monitor_dsn"):
        schedule.loop(config.ProbesConfig(), once=True, stop=__import__("threading").Event())


@pytest.mark.parametrize(("argv", "message"), [
    ([], "Missing command"),
    (["nagios"], "No such command 'nagios'"),
    (["tpc", "--modes", "pull,sideways"], "unknown mode sideways"),
    (["tpc", "--warning", "2"], "2 is not a fraction between 0 and 1"),
    (["tpc", "--timeout", "soon"], "'soon' is not a valid integer"),
    (["conditions", "--squid", "IHEP"], "expected SITE=http://host:port"),
    (["ingest-lag", "--stale", "0"], "0 is not a positive number"),
    (["dispatcher", "--surprise"], "No such option '--surprise'"),
    (["schedule"], "Missing option '--config'"),
])
def test_bad_arguments_exit_3(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert cli.main(argv) == 3
    out = capsys.readouterr().out
    assert out.startswith("JUNO-PROBE UNKNOWN - juno-probe")
    assert message in out


def test_missing_settings_are_unknown(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUNO_WMS_URL", raising=False)
    monkeypatch.delenv("JUNO_MONITOR_DSN", raising=False)
    assert cli.main(["dispatcher"]) == 3
    assert "DISPATCHER UNKNOWN - no dispatcher (--dispatcher-url)" in capsys.readouterr().out
    assert cli.main(["tpc", "--rucio-config", str(tmp_path / "none.cfg")]) == 3
    assert "cannot read the Rucio client configuration" in capsys.readouterr().out
    assert cli.main(["ingest-lag", "--metrics-dir", str(tmp_path / "none")]) == 3
    assert "no such metrics directory" in capsys.readouterr().out
    assert cli.main(["rucio", "--config", str(write(tmp_path, "oops: 1\n"))]) == 3
    assert "oops: Extra inputs are not permitted" in capsys.readouterr().out


def test_a_probe_that_raises_is_unknown(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(services, "check_dispatcher", boom)
    assert cli.main(["dispatcher", "--dispatcher-url", "http://127.0.0.1:9"]) == 3
    assert "DISPATCHER UNKNOWN - the probe raised RuntimeError: the disk is on fire" in capsys.readouterr().out
