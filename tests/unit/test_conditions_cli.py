"""`juno-dcs conditions` on SQLite: the admin commands, their errors (what and where), nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from juno_dcs.cli import main


@pytest.fixture
def cli(tmp_path: Path) -> tuple[CliRunner, list[str]]:
    runner = CliRunner()
    base = ["conditions", "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    assert runner.invoke(main, [*base, "init"]).exit_code == 0
    return runner, base


def _run(cli: tuple[CliRunner, list[str]], *args: str, code: int = 0) -> str:
    runner, base = cli
    result = runner.invoke(main, [*base, *args])
    assert result.exit_code == code, result.output
    return result.output


def _gains(tmp_path: Path, n: int = 3) -> Path:
    path = tmp_path / "gains.json"
    path.write_text(json.dumps({"channel": list(range(n)), "gain": [1.0] * n, "sigma": [0.1] * n}))
    return path


def test_build_lock_export_import(cli: tuple[CliRunner, list[str]], tmp_path: Path) -> None:
    assert "created" in _run(cli, "create-tag", "T1", "--description", "first")
    assert "added" in _run(cli, "add", "T1", "pmt_gains", "0-99", str(_gains(tmp_path)), "--type", "pmt_gains")
    assert "nothing to do" in _run(cli, "add", "T1", "pmt_gains", "0-99", str(_gains(tmp_path)))
    assert "locked" in _run(cli, "lock", "T1")
    listing = json.loads(_run(cli, "list", "--json"))
    assert [(t["name"], t["state"]) for t in listing] == [("T1", "locked")]
    shown = json.loads(_run(cli, "show", "T1", "--json"))
    assert shown["iovs"][0]["first_run"] == 0
    _run(cli, "export", "T1", str(tmp_path / "t1.json"))
    document = json.loads((tmp_path / "t1.json").read_text())
    document["name"] = "T2"
    (tmp_path / "t2.json").write_text(json.dumps(document))
    assert "imported" in _run(cli, "import", str(tmp_path / "t2.json"))
    assert "same content" in _run(cli, "import", str(tmp_path / "t2.json"))
    assert "T2" in _run(cli, "show", "T2")


@pytest.mark.parametrize(("args", "message", "code"), [  # 2: bad input (and unknown names), 1: refused
    (("add", "T1", "pmt_gains", "9-1", "{gains}", "--type", "pmt_gains"), "run range '9-1'", 2),
    (("add", "T1", "newfolder", "0-1", "{gains}"), "folder 'newfolder' is new", 2),
    (("add", "NOPE", "pmt_gains", "0-1", "{gains}", "--type", "pmt_gains"), "unknown global tag 'NOPE'", 2),
    (("add", "T1", "energy_scale", "0-1", "{gains}", "--type", "energy_scale"), "not a valid energy_scale", 2),
    (("create-tag", "bad tag"), "global tag 'bad tag'", 2),
    (("lock", "T1"), "no payloads", 1),
])
def test_errors_name_what_and_write_nothing(cli: tuple[CliRunner, list[str]], tmp_path: Path,
                                            args: tuple[str, ...], message: str, code: int) -> None:
    _run(cli, "create-tag", "T1")
    before = _run(cli, "show", "T1", "--json")
    output = _run(cli, *(a.replace("{gains}", str(_gains(tmp_path))) for a in args), code=code)
    assert output.startswith("juno-dcs: error: ")
    assert message in output
    assert _run(cli, "show", "T1", "--json").replace(" ", "") == before.replace(" ", "")


def test_bad_import_file_names_file_and_field(cli: tuple[CliRunner, list[str]], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "juno-conditions-tag/1", "name": "T3", "state": "open", "folders": [],
                               "iovs": [{"folder": "x", "first_run": 0, "last_run": 1, "payload": "0" * 64}],
                               "payloads": {}}))
    output = _run(cli, "import", str(bad), code=2)
    assert f"{bad}: " in output
    assert "iovs.0: folder 'x' is not in folders" in output
    assert json.loads(_run(cli, "list", "--json")) == []


def test_no_database_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUNO_CONDITIONS_DB_URL", raising=False)
    result = CliRunner().invoke(main, ["conditions", "--home", str(tmp_path), "list"])
    assert result.exit_code == 2
    assert "conditions-admin.yaml" in result.output
