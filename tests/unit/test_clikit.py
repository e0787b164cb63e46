"""The CLI kit (juno_dcs.clikit): one error line and one exit code per error class, click's usage errors exit 2,
the shared options; and bad arguments to every command line of the project give a clear message and exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from juno_dcs import clikit, errors
from juno_dcs.conditions import errors as conditions_errors
from juno_dcs.conditions.client import ConditionsUnavailable, OpenTagRefused
from juno_dcs.ingest.spade_sim import PlanError as SimPlanError
from juno_dcs.jsub.errors import DataError, RegistryError, SplitError, TaskFileError
from juno_dcs.payloads.errors import PayloadInputError
from juno_dcs.placement.durations import DurationError
from juno_dcs.placement.loader import PolicyError
from juno_dcs.placement.planner import PlanError
from juno_dcs.topology import TopologyError
from juno_dcs.topology.sizes import SizeError
from juno_dcs.transfer import logic as transfer_logic
from juno_dcs.transfer.models import SubmitError
from juno_dcs.wms import logic as wms_logic
from juno_dcs.wms.client import WmsError

# (an error, the exit code the kit gives it, the HTTP status a route gives it)
TREE = [
    (errors.JunoDcsError("x"), 1, 500),
    (errors.ConfigError("x"), 2, 400),
    (errors.NotFound("x"), 2, 404),
    (errors.PermissionDenied("x"), 1, 403),
    (errors.GridStateError("x"), 1, 409),
    (errors.Conflict("x"), 1, 409),
    (errors.StillWaiting("x"), 3, 202),
    (errors.ServiceError("x"), 1, 502),
    (errors.ServiceTimeout("x"), 1, 504),
    (errors.Unavailable("x"), 3, 503),
    (TopologyError([]), 2, 400),
    (PolicyError([]), 2, 400),
    (PlanError("x"), 2, 400),
    (SizeError("5 parsecs", "unknown unit"), 2, 400),
    (DurationError("soon", "not a duration"), 2, 400),
    (SimPlanError("files", "x"), 2, 400),
    (SubmitError("x"), 2, 400),
    (transfer_logic.NotFound("x"), 2, 404),
    (transfer_logic.Duplicate("x"), 1, 409),
    (wms_logic.WmsLogicError("x"), 1, 400),
    (wms_logic.NotFound("x"), 2, 404),
    (wms_logic.Conflict("x"), 1, 409),
    (wms_logic.Invalid("x"), 2, 400),
    (conditions_errors.ConditionsInputError("x"), 2, 400),
    (conditions_errors.NotFound("x"), 2, 404),
    (conditions_errors.Conflict("x"), 1, 409),
    (conditions_errors.DatabaseUnavailable("x"), 3, 503),
    (ConditionsUnavailable("x", []), 3, 503),
    (OpenTagRefused("x"), 1, 500),
    (TaskFileError("x"), 2, 400),
    (SplitError("x"), 2, 400),
    (RegistryError("x"), 1, 500),
    (DataError("x"), 1, 500),
    (PayloadInputError("x"), 2, 400),
    (WmsError(503, "x"), 1, 500),
]


def _failing(exc: BaseException) -> click.Group:
    @click.group(cls=clikit.KitGroup, name="juno-test")
    def main() -> None:
        pass

    @main.command()
    def boom() -> None:
        raise exc

    @main.group()
    def sub() -> None:
        pass

    @sub.command()
    def deeper() -> None:
        raise exc

    return main


@pytest.mark.parametrize(("exc", "code", "status"), TREE,
                         ids=[f"{type(e).__module__}.{type(e).__qualname__}" for e, _, _ in TREE])
def test_each_error_class_has_its_exit_code_and_http_status(exc: errors.JunoDcsError, code: int,
                                                            status: int) -> None:
    assert isinstance(exc, errors.JunoDcsError)
    assert (exc.exit_code, exc.http_status) == (code, status)
    assert clikit.exit_code(exc) == code
    for path in (["boom"], ["sub", "deeper"]):
        result = CliRunner().invoke(_failing(exc), path)
        assert result.exit_code == code, result.output
        assert result.stderr == f"juno-test: error: {exc}\n"
        assert result.stdout == ""


def test_an_error_outside_the_tree_is_a_bug_with_its_traceback() -> None:
    result = CliRunner().invoke(_failing(KeyError("k")), ["boom"])
    assert result.exit_code == 1
    assert isinstance(result.exception, KeyError)
    assert clikit.exit_code(KeyError("k")) == clikit.EXIT_FAILED


def test_the_message_names_the_command_path_when_asked() -> None:
    @click.group(cls=clikit.KitGroup, name="juno-payload", path_in_errors=True)
    def main() -> None:
        pass

    @main.command()
    def cal() -> None:
        raise PayloadInputError("--run -5: expected a non-negative run number")

    result = CliRunner().invoke(main, ["cal"])
    assert (result.exit_code, result.stderr) == (2, "juno-payload cal: error: --run -5: expected a non-negative "
                                                    "run number\n")


@pytest.mark.parametrize("args", [["boom", "--nope"], ["nosuch"], ["sub", "deeper", "extra"], ["sub", "--x"]])
def test_click_usage_errors_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(_failing(errors.ConfigError("unused")), args)
    assert result.exit_code == clikit.EXIT_BAD_INPUT
    assert "Error:" in result.stderr


def test_the_exit_codes_are_the_documented_ones() -> None:
    assert (clikit.EXIT_OK, clikit.EXIT_FAILED, clikit.EXIT_BAD_INPUT, clikit.EXIT_WAITING) == (0, 1, 2, 3)
    admin = (Path(__file__).resolve().parents[2] / "docs" / "admin.md").read_text()
    assert "## Exit codes" in admin
    section = admin.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for line in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert line in section


def test_log_option_and_its_hidden_old_spelling() -> None:
    @click.command(cls=clikit.KitCommand)
    @clikit.log_option
    def cmd(log_json: bool) -> None:
        click.echo(json.dumps(log_json))

    runner = CliRunner()
    assert runner.invoke(cmd, []).stdout == "false\n"
    assert runner.invoke(cmd, ["--log-json"]).stdout == "true\n"
    assert runner.invoke(cmd, ["--json-logs"]).stdout == "true\n"
    helptext = runner.invoke(cmd, ["--help"]).stdout
    assert "--log-json" in helptext
    assert "--json-logs" not in helptext


def test_home_option_and_parameter_say_the_same() -> None:
    @click.command()
    @clikit.home_option
    def cmd(home: Path | None) -> None:
        click.echo(str(home))

    assert CliRunner().invoke(cmd, ["--home", "/some/where"]).stdout == "/some/where\n"
    param = clikit.home_parameter(expose_value=False)
    assert (param.opts, param.help, param.expose_value) == (["--home"], clikit.HOME_HELP, False)


def test_grid_settings_refuse_a_bad_value_as_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUNO_DCS_RUCIO_WORKERS", "none")
    with pytest.raises(errors.ConfigError, match="bad setting rucio_workers"):
        clikit.grid_settings()
    monkeypatch.delenv("JUNO_DCS_RUCIO_WORKERS")
    assert clikit.grid_settings(Path("/h"), 24000).home == Path("/h")


def test_use_rucio_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUCIO_CONFIG", raising=False)
    with pytest.raises(errors.ConfigError, match="no such file"):
        clikit.use_rucio_config(tmp_path / "missing.cfg")
    cfg = tmp_path / "rucio.cfg"
    cfg.write_text("[client]\n")
    clikit.use_rucio_config(cfg)
    assert os.environ["RUCIO_CONFIG"] == str(cfg)


def test_rucio_config_is_set_in_one_place() -> None:
    """Only clikit.use_rucio_config assigns RUCIO_CONFIG in this process (children get it in their environment)."""
    root = Path(__file__).resolve().parents[2]
    setters = [f"{path.relative_to(root)}:{n}" for base in ("daemons/src", "probes/src")
               for path in (root / base).rglob("*.py")
               for n, line in enumerate(path.read_text().splitlines(), 1)
               if 'environ["RUCIO_CONFIG"] =' in line]
    assert [s.rpartition(":")[0] for s in setters] == ["daemons/src/juno_dcs/clikit.py"]


LAZY_MODULE = """
import click

@click.command()
def hello() -> None:
    click.echo("hello from a lazy command")

not_a_command = 42
"""


def test_lazy_commands_are_listed_and_imported_when_they_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "lazy_cmds_for_test.py").write_text(LAZY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    group = clikit.KitGroup(name="g", lazy={"hi": "lazy_cmds_for_test:hello",
                                            "bad": "lazy_cmds_for_test:not_a_command"})
    assert "lazy_cmds_for_test" not in sys.modules
    assert group.list_commands(click.Context(group)) == ["bad", "hi"]
    assert "lazy_cmds_for_test" not in sys.modules  # listing names imports nothing (--help imports, for the texts)
    ran = CliRunner().invoke(group, ["hi"])
    assert (ran.exit_code, ran.output) == (0, "hello from a lazy command\n")
    with pytest.raises(TypeError, match="not a click command"):
        CliRunner().invoke(group, ["bad"], catch_exceptions=False)
    monkeypatch.delitem(sys.modules, "lazy_cmds_for_test")


def test_juno_dcs_starts_without_importing_its_command_groups() -> None:
    import subprocess
    import sys

    code = ("import sys, juno_dcs.cli; heavy = [m for m in ('juno_dcs.placement.cli', 'juno_dcs.ingest.cli', "
            "'juno_dcs.conditions.cli', 'juno_dcs.ingest.spade_cli', 'juno_dcs.settings', 'pydantic_settings') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
