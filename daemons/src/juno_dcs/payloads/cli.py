"""`juno-payload`: the JUNO payload steps and the condition data that matches them.

    juno-payload detsim --particle e-|e+|gamma|mu-|mu+|neutron --energy-mev E --position center|x,y,z|uniform
                        --events N --seed S --output FILE.root [--muon-mb-per-event MB]
    juno-payload elecsim --input IN.root --output OUT.root --seed S
    juno-payload cal --input IN.root --output OUT.root --tag GLOBALTAG --run RUN     (JUNO_CONDITIONS_URLS)
    juno-payload rec --input IN.root --output OUT.root
    juno-payload make-conditions --tag TAG --runs FIRST-LAST [--db URL | --home GRID_HOME] [--description TEXT]

A step prints one JSON line on stdout ({"step", "events", "bytes", "output", "seconds", ...}) and exits 0;
otherwise it prints `juno-payload <step>: error: <what and where>` on stderr and exits with the kit's codes
(juno_dcs.clikit, docs/admin.md "Exit codes"), which keep the payload's two kinds of failure apart:

    2  bad input: an argument, a missing or unreadable input or output, a wrong tree, a malformed command line,
       a tag without the run's conditions (retrying does not help; until 2026-12 a payload exited 1 for these)
    3  transient: no conditions endpoint answered (worth retrying)
    1  any other failure
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from juno_dcs.clikit import KitGroup, home_option
from juno_dcs.payloads.errors import PayloadInputError

F = TypeVar("F", bound=Callable[..., Any])
PATH = click.Path(path_type=Path, dir_okay=False)
EPILOG = "Exit codes: 0 done, 1 failed, 2 bad input (arguments, input files, conditions), 3 transient (retry)."


def _files(func: F) -> F:
    """A file the step cannot read or write (OSError) is bad input, as the kit reports it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OSError as exc:
            raise PayloadInputError(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.group(cls=KitGroup, name="juno-payload", path_in_errors=True, epilog=EPILOG)
@click.option("-v", "--verbose", is_flag=True, help="Log what is being done (stderr).")
def main(verbose: bool) -> None:
    """The JUNO payloads: detsim, elecsim, cal, rec (toy detector, ROOT files via uproot)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@main.command()
@click.option("--particle", required=True, type=click.Choice(["e-", "e+", "gamma", "mu-", "mu+", "neutron"]))
@click.option("--energy-mev", required=True, type=float, help="Kinetic energy in MeV.")
@click.option("--position", default="center", show_default=True,
              help="center, uniform (in the 17.7 m scintillator sphere) or x,y,z in mm.")
@click.option("--events", required=True, type=int)
@click.option("--seed", required=True, type=int)
@click.option("--output", required=True, type=PATH, help="The ROOT file to write (tree `sim`).")
@click.option("--muon-mb-per-event", default=500.0, show_default=True, type=float,
              help="Memory a muon event holds while it is simulated (MB).")
@_files
def detsim(particle: str, energy_mev: float, position: str, events: int, seed: int, output: Path,
           muon_mb_per_event: float) -> None:
    """Simulate events: particles -> photoelectron hits on the PMTs."""
    from juno_dcs.payloads import detsim as step

    config = step.DetsimConfig(particle=particle, energy_mev=energy_mev, position=step.Position.parse(position),
                               events=events, seed=seed, output=output, muon_mb_per_event=muon_mb_per_event)
    click.echo(step.run(config).to_json())


@main.command()
@click.option("--input", "input_path", required=True, type=PATH, help="A detsim file.")
@click.option("--output", required=True, type=PATH, help="The ROOT file to write (tree `elec`).")
@click.option("--seed", required=True, type=int)
@_files
def elecsim(input_path: Path, output: Path, seed: int) -> None:
    """Electronics: hits -> per-PMT charges (ADC) and times, with gain spread, dark noise and jitter."""
    from juno_dcs.payloads import elecsim as step

    click.echo(step.run(input_path, output, seed).to_json())


@main.command()
@click.option("--input", "input_path", required=True, type=PATH, help="An elecsim file.")
@click.option("--output", required=True, type=PATH, help="The ROOT file to write (tree `calib`).")
@click.option("--tag", required=True, help="A locked global tag.")
@click.option("--run", "run_number", required=True, type=int, help="The run whose conditions apply.")
@_files
def cal(input_path: Path, output: Path, tag: str, run_number: int) -> None:
    """Calibrate charges and times with the run's conditions (JUNO_CONDITIONS_URLS: proxies, then servers)."""
    from juno_dcs.payloads import cal as step
    from juno_dcs.payloads.conditions import client_from_env, load_conditions
    from juno_dcs.payloads.rootio import check_output, open_input

    check_output(output, input_path)  # before asking the service: a bad input fails fast
    with open_input(input_path, "elec", step.BRANCHES, needs="juno-payload elecsim"):
        pass
    if run_number < 0:
        raise PayloadInputError(f"--run {run_number}: expected a non-negative run number")
    client = client_from_env()
    try:
        conditions = load_conditions(client, tag, run_number)
    finally:
        client.close()
    summary = step.run(input_path, output, conditions)
    summary.extra["conditions_endpoint"] = client.last_endpoint
    click.echo(summary.to_json())


@main.command()
@click.option("--input", "input_path", required=True, type=PATH, help="A cal file.")
@click.option("--output", required=True, type=PATH, help="The ROOT file to write (tree `rec`).")
@_files
def rec(input_path: Path, output: Path) -> None:
    """Reconstruct each event's energy and vertex."""
    from juno_dcs.payloads import rec as step

    click.echo(step.run(input_path, output).to_json())


@main.command("make-conditions")
@click.option("--tag", required=True, help="The global tag to create (locked at the end).")
@click.option("--runs", required=True, help="FIRST-LAST, FIRST- (to the largest run) or RUN.")
@click.option("--db", "db_url", default=None, metavar="URL",
              help="SQLAlchemy URL of the conditions writer account (default: $JUNO_CONDITIONS_DB_URL, "
                   "else the grid home's etc/conditions-admin.yaml).")
@home_option
@click.option("--description", default="", help="The tag's description.")
@_files
def make_conditions(tag: str, runs: str, db_url: str | None, home: Path | None, description: str) -> None:
    """Create and lock a global tag whose gains, timing offsets and energy scale match the toy detector."""
    from juno_dcs.conditions.cli import resolve_db_url
    from juno_dcs.conditions.models import RunRange, check_name
    from juno_dcs.payloads import conditions as cond

    check_name(tag, "global tag")
    run_range = RunRange.parse(runs)
    with cond.writer_transaction(resolve_db_url(db_url, home)) as conn:
        made = cond.make_conditions(conn, tag, run_range, description)
    click.echo(made.to_json())
