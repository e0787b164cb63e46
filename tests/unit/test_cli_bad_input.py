"""Bad input to every command line of the project gives a clear one-line reason and exit code 2 (the kit's "bad
input", docs/admin.md "Exit codes"), whether click refuses it or the command does; nothing needs a grid."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from juno_dcs.cli import main as juno_dcs
from juno_dcs.conditions.__main__ import main as conditions_service
from juno_dcs.grid.rucio_schema import main as rucio_schema
from juno_dcs.grid.watchdog import main as watchdog
from juno_dcs.jsub.cli import main as jsub
from juno_dcs.jsub.local import main as jsub_local
from juno_dcs.payloads.cli import main as juno_payload
from juno_dcs.pilot.__main__ import main as juno_pilot
from juno_dcs.prodsys.cli import main as juno_prod

PILOT = ["run", "--dispatcher", "http://127.0.0.1:1", "--site", "IHEP", "--queue", "q", "--cores", "1",
         "--memory-mb", "1000", "--walltime-s", "60", "--lifetime-s", "60", "--workdir", "{tmp}/w",
         "--rucio-configs", "{tmp}"]
DETSIM = ["detsim", "--evtmax", "2", "--seed", "1", "--output", "{tmp}/s.root"]

CASES: list[tuple[str, click.Command, list[str], str]] = [
    # (name, command, arguments ({tmp}: a fresh directory), a phrase of the message)
    ("up-port", juno_dcs, ["up", "--base-port", "80"], "80 is not in the range"),
    ("up-port-word", juno_dcs, ["up", "--base-port", "lots"], "'lots' is not a valid integer"),
    ("up-topology", juno_dcs, ["up", "--topology", "{tmp}/none.yaml"], "does not exist"),
    ("unknown-command", juno_dcs, ["frobnicate"], "No such command 'frobnicate'"),
    ("unknown-option", juno_dcs, ["status", "--colour"], "No such option '--colour'"),
    ("db-stats-mode", juno_dcs, ["db-stats", "--mode", "never"], "'never' is not one of"),
    ("db-stats-interval", juno_dcs, ["db-stats", "--interval", "0"], "0.0 is not in the range"),
    ("plan-no-did", juno_dcs, ["placement", "plan"], "Missing argument 'DID'"),
    ("plan-lifetime", juno_dcs, ["placement", "plan", "raw:block.20261125.physics", "--lifetime", "soon"],
     "Invalid value for '--lifetime'"),
    ("plan-bad-did", juno_dcs, ["placement", "plan", "no-scope-here"], "no-scope-here"),
    ("apply-wait", juno_dcs, ["placement", "apply", "raw:x", "--wait", "-1"], "-1.0 is not in the range"),
    ("spade-both", juno_dcs, ["spade-sim", "--rate", "1", "--mbps", "1"], "give --rate or --mbps, not both"),
    ("spade-size", juno_dcs, ["spade-sim", "--size", "12 parsecs"], "unknown unit 'parsecs'"),
    ("spade-files", juno_dcs, ["spade-sim", "--files", "0"], "0 is not in the range"),
    ("spade-api", juno_dcs, ["spade-sim", "--bootstrap", "127.0.0.1:1", "--api-version", "x.y"],
     "is not a version such as 0.9"),
    ("spade-date", juno_dcs, ["spade-sim", "--start-date", "25/11/2026"], "'25/11/2026' does not match"),
    ("raw-day", juno_dcs, ["raw", "status", "--day"], "requires an argument"),
    ("ingest-config", juno_dcs, ["ingest", "run"], "Missing option '--config'"),
    ("conditions-run", juno_dcs, ["conditions", "--db", "sqlite:///{tmp}/c.db", "get", "T", "five"],
     "'five' is not a valid integer"),
    ("conditions-no-db", juno_dcs, ["conditions", "--home", "{tmp}", "list"], "no conditions database"),
    ("conditions-import", juno_dcs, ["conditions", "--db", "sqlite:///{tmp}/c.db", "import", "{tmp}/none.json"],
     "does not exist"),
    ("conditions-serve-port", conditions_service, ["serve", "--config", "{tmp}/c.yaml", "--port", "x"],
     "'x' is not a valid integer"),
    ("conditions-serve-config", conditions_service, ["serve", "--config", "{tmp}/none.yaml", "--port", "1"],
     "juno-conditions: error: {tmp}/none.yaml: cannot read"),
    ("jsub-rucio-config", jsub, ["--rucio-config", "{tmp}/none.cfg", "--registry", "{tmp}", "ls"],
     "jsub: error: Rucio configuration {tmp}/none.cfg: no such file"),
    ("jsub-no-command", jsub, ["--registry", "{tmp}", "frobnicate"], "No such command"),
    ("jsub-task-file", jsub, ["--registry", "{tmp}", "create", "{tmp}/none.yaml", "--account", "a"],
     "jsub: error: {tmp}/none.yaml"),
    ("jsub-local-registry", jsub_local, ["{tmp}/none", "1"], "does not exist"),
    ("jsub-local-task", jsub_local, ["{tmp}", "one"], "'one' is not a valid integer"),
    ("prod-config", juno_prod, ["--config", "{tmp}/none.yaml", "status"], "juno-prod: error: {tmp}/none.yaml"),
    ("prod-extend", juno_prod, ["extend", "1", "--jobs", "0"], "0 is not in the range"),
    ("prod-steering", juno_prod, ["submit"], "Missing argument 'STEERING_FILE'"),
    ("payload-events", juno_payload, ["detsim", "--evtmax", "x", "gun"], "--evtmax 'x': not an integer"),
    ("payload-energy", juno_payload, [*DETSIM, "gun", "--momentums", "-1"],
     "juno-payload detsim: error: gun --momentums '-1'"),
    ("payload-output", juno_payload, ["detsim", "--evtmax", "2", "--output", "{tmp}/missing/s.root", "gun"],
     "does not exist"),
    ("payload-particle", juno_payload, [*DETSIM, "gun", "--particles", "pi0"], "'pi0': unknown particle"),
    ("payload-runs", juno_payload, ["make-conditions", "--tag", "T1", "--runs", "9-3", "--db", "sqlite://"],
     "run range '9-3'"),
    ("pilot-cores", juno_pilot, [*PILOT, "--cores", "0"], "0 is not in the range x>0"),
    ("pilot-lifetime", juno_pilot, [*PILOT, "--lifetime-s", "soon"], "'soon' is not a valid float"),
    ("pilot-configs", juno_pilot, [*PILOT[:-1], "{tmp}/none"],
     "juno-pilot: error: --rucio-configs {tmp}/none is not a directory"),
    ("pilot-missing", juno_pilot, ["run", "--site", "IHEP"], "Missing option"),
    ("pilot-factory-config", juno_pilot, ["factory", "--config", "{tmp}/none.yaml"], "juno-pilot: error: "),
    ("rucio-schema", rucio_schema, ["downgrade"], "'downgrade' is not one of 'bootstrap', 'upgrade'"),
]


@pytest.mark.parametrize(("command", "args", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: click.Command,
                                          args: list[str], phrase: str) -> None:
    monkeypatch.delenv("JUNO_CONDITIONS_DB_URL", raising=False)
    monkeypatch.delenv("JUNO_PROD_CONFIG", raising=False)
    (tmp_path / "c.yaml").write_text("database_url: sqlite://\n")
    result = CliRunner().invoke(command, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert phrase.replace("{tmp}", str(tmp_path)) in result.stderr, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_a_bad_setting_in_the_environment_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUNO_DCS_BASE_PORT", "many")
    result = CliRunner().invoke(juno_dcs, ["status"])
    assert result.exit_code == 2
    assert result.stderr.startswith("juno-dcs: error: bad setting base_port: ")


def test_the_watchdog_without_its_supervisor_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUNO_DCS_SUPERVISOR_URL", raising=False)
    result = CliRunner().invoke(watchdog, [])
    assert (result.exit_code, result.stderr) == (2, "watchdog: error: JUNO_DCS_SUPERVISOR_URL is not set\n")
    assert result.stdout == ""  # stdout is the supervisor's event protocol


@pytest.mark.parametrize("command", [juno_dcs, jsub, juno_prod, juno_payload, juno_pilot, conditions_service])
def test_every_help_names_the_exit_codes(command: click.Command) -> None:
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    assert "Exit codes: 0 " in result.stdout
