"""juno-prod's own checks, before any service is asked: the configuration and the steering file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from juno_dcs.packaged import data_file
from juno_dcs.prodsys.cli import main
from juno_dcs.prodsys.config import ENV_CONFIG, load_config


def _config(tmp_path: Path, **data: object) -> Path:
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_no_configuration_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_CONFIG, raising=False)
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2  # bad input
    assert "no configuration: give --config FILE or set JUNO_PROD_CONFIG" in result.output


def test_a_bad_configuration_names_the_file_and_key(tmp_path: Path) -> None:
    path = _config(tmp_path, database_url="postgresql://x", sleep=0, colour="red")
    result = CliRunner().invoke(main, ["--config", str(path), "status"])
    assert result.exit_code == 2  # bad input
    for phrase in (str(path), "dispatcher_url: Field required", "sleep: Input should be greater than 0",
                   "colour: Extra inputs are not permitted"):
        assert phrase in result.output, result.output


def test_the_configuration_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, database_url="postgresql://x", dispatcher_url="http://127.0.0.1:1")
    monkeypatch.setenv(ENV_CONFIG, str(path))
    config = load_config(None)
    assert (config.rucio.account, config.sleep, config.owner) == ("production", 10.0, "production")


def test_a_bad_steering_file_is_refused_before_any_service(tmp_path: Path) -> None:
    config = _config(tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none",
                     dispatcher_url="http://127.0.0.1:1")
    steering = tmp_path / "s.yaml"
    steering.write_text(yaml.safe_dump({"name": "x", "campaign": "c", "jobs": -1}))
    result = CliRunner().invoke(main, ["--config", str(config), "submit", str(steering)])
    assert result.exit_code == 2  # bad input
    assert f"juno-prod: error: {steering}: " in result.output
    assert "jobs: Input should be greater than or equal to 1" in result.output
    assert "software: Field required" in result.output


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none",
                     dispatcher_url="http://127.0.0.1:1", policies_dir=str(data_file("placement")),
                     topology=str(data_file("topology.yaml")))
    result = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert result.exit_code == 1  # a service failed
    assert "juno-prod: error: the database:" in result.output
