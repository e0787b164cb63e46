"""The dispatcher's messages and configuration: validation at the edge, each problem named (retry rules and
failure classes: test_wms_failures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from juno_dcs.errors import ConfigError
from juno_dcs.wms.config import load_config
from juno_dcs.wms.models import ERROR_CODES, FinishReport, JobDescription, JobSpec, TaskSpec

CHECKOUT = Path(__file__).resolve().parents[2]


def test_jobspec_defaults_follow_the_contract() -> None:
    spec = JobSpec(key="k", transformation="detsim")
    assert (spec.cores, spec.memory_mb, spec.walltime_s, spec.max_attempts, spec.priority, spec.site) == (
        1, 250, 3600, 3, 0, None)


@pytest.mark.parametrize(("body", "problem"), [
    ({"key": "k", "transformation": "detsim", "colour": "red"}, "Extra inputs"),
    ({"key": "k", "transformation": "detsim", "cores": -1}, "greater than or equal to 1"),
    ({"key": "k", "transformation": "fly"}, "detsim"),
    ({"key": "k", "transformation": "exec"}, "args[0]"),
    ({"key": "k", "transformation": "detsim", "inputs": ["no-scope"]}, "pattern"),
])
def test_jobspec_refuses(body: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("[", r"\[")):
        JobSpec.model_validate(body)


def test_task_refuses_duplicate_keys() -> None:
    with pytest.raises(ValidationError, match="appears twice"):
        TaskSpec(name="t", kind="user", owner="alice",
                 jobs=[JobSpec(key="a", transformation="rec"), JobSpec(key="a", transformation="rec")])


def test_finish_report_fills_the_error_class_and_checks_it() -> None:
    assert FinishReport(state="failed", error_code=1235).error_class == "memory"
    assert FinishReport(state="failed", error_class="lost").error_code == 1201
    with pytest.raises(ValidationError, match="not error_class"):
        FinishReport(state="failed", error_code=1235, error_class="payload")
    with pytest.raises(ValidationError, match="needs error_code"):
        FinishReport(state="failed")
    with pytest.raises(ValidationError, match="no error_code"):
        FinishReport(state="finished", error_code=1305)
    assert set(ERROR_CODES) == {1099, 1235, 1305, 1213, 1137, 1201, 1144}


def test_job_description_is_a_jobspec_with_placement() -> None:
    desc = JobDescription(key="k", transformation="rec", job_id=1, task_id=2, task_name="t", owner="o", attempt=1,
                          site="JINR", queue="JINR", output_rse="JINR_DISK", lease_s=120)
    assert isinstance(desc, JobSpec)
    assert desc.site == "JINR"


def test_config_defaults_and_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "wms.yaml"
    path.write_text("database_url: postgresql:///x\ntopology: topology.yaml\nretry_rules: /etc/r.yaml\nauth: null\n")
    config = load_config(path)
    assert (config.lease_s, config.memory_scale, config.rucio, config.auth) == (120, 0.1, False, None)
    assert config.topology == tmp_path / "topology.yaml"
    assert config.retry_rules == Path("/etc/r.yaml")
    path.write_text("database_url: x\ntopology: t\nretry_rules: r\nauth: null\nlease: 5\n")
    with pytest.raises(ConfigError, match="lease: Extra inputs"):
        load_config(path)


def test_config_names_its_token_checks_or_says_none(tmp_path: Path) -> None:
    """`auth` is required: a dispatcher never runs open because a key was forgotten."""
    path = tmp_path / "wms.yaml"
    path.write_text("database_url: x\ntopology: t\nretry_rules: r\n")
    with pytest.raises(ConfigError, match="auth: Field required"):
        load_config(path)
    path.write_text("database_url: x\ntopology: t\nretry_rules: r\n"
                    "auth: {issuer: 'https://iam.example.org/', audiences: [juno-wms], ca_file: ca.pem}\n")
    config = load_config(path)
    assert config.auth is not None
    assert config.auth.ca_file == tmp_path / "ca.pem"
    assert (config.pilot_group, config.production_group) == ("/juno/pilots", "/juno/production")
    path.write_text("database_url: x\ntopology: t\nretry_rules: r\nauth: {issuer: 'http://iam', audiences: [a]}\n")
    with pytest.raises(ConfigError, match=r"auth\.issuer"):
        load_config(path)
