"""`juno-payload`: the JUNO payload steps and the condition data that matches them.

    juno-payload detsim [--evtmax N] [--seed S] [--output F.root] [--user-output F.root] [--no-gdml] ...
                        gun [--particles P...] [--momentums M...] [--positions X Y Z...] ...
                      | gendecay [--nuclear U-238|Th-232|K-40|...] [--volume pTarget] [--material LS]
                      | hepevt --exe IBD|IBD-eplus|IBD-neutron|Muon [--volume V] [--material M]
    juno-payload elecsim [--evtmax N] [--input IN.root] [--output OUT.root] [--seed S] [--rate HZ] [--user-output F]
    juno-payload cal [--evtmax N] [--input IN.root] [--output OUT.root] [--tag GLOBALTAG] [--run RUN]
                                                              (JUNO_CONDITIONS_URLS; the tag: else $JUNO_GLOBAL_TAG)
    juno-payload rec [--evtmax N] [--input IN.root] [--output OUT.root]
    juno-payload make-conditions --tag TAG --runs FIRST-LAST [--db URL | --home GRID_HOME] [--description TEXT]

The steps take the JUNO offline tutorial scripts' command lines, parsed by juno_dcs.payloads.grammar (the same
parser `jsub` and `juno-prod` run before they submit; `juno-payload STEP --help` lists the options; docs/payloads.md).
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
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from juno_dcs.clikit import KitGroup, home_option
from juno_dcs.payloads import grammar
from juno_dcs.payloads.errors import PayloadInputError

F = TypeVar("F", bound=Callable[..., Any])
PATH = click.Path(path_type=Path, dir_okay=False)
GLOBAL_TAG_ENV = "JUNO_GLOBAL_TAG"
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


STEP = {"context_settings": {"ignore_unknown_options": True, "allow_extra_args": True,
                             "help_option_names": []}, "add_help_option": False}
ARGV = click.argument("argv", nargs=-1, type=click.UNPROCESSED)


def _parse(step: str, argv: tuple[str, ...]) -> grammar.Parsed | None:
    """The checked command line, or None after printing the usage for --help/-h."""
    if "--help" in argv or "-h" in argv:
        click.echo(grammar.usage(step))
        return None
    return grammar.check(step, argv)


@main.command(**STEP)
@ARGV
@_files
def detsim(argv: tuple[str, ...]) -> None:
    """Simulate a generator's events: particles -> photoelectron hits (tree `sim`)."""
    from juno_dcs.payloads import detsim as step

    parsed = _parse("detsim", argv)
    if parsed is not None:
        click.echo(step.run(parsed).to_json())


@main.command(**STEP)
@ARGV
@_files
def elecsim(argv: tuple[str, ...]) -> None:
    """Electronics: hits -> per-PMT charges (ADC) and times, with gain spread, dark noise and jitter."""
    from juno_dcs.payloads import elecsim as step

    parsed = _parse("elecsim", argv)
    if parsed is not None:
        click.echo(step.run(parsed).to_json())


@main.command(**STEP)
@ARGV
@_files
def cal(argv: tuple[str, ...]) -> None:
    """Calibrate charges and times with the run's conditions (JUNO_CONDITIONS_URLS: proxies, then servers)."""
    from juno_dcs.payloads import cal as step
    from juno_dcs.payloads.conditions import client_from_env, load_conditions
    from juno_dcs.payloads.rootio import check_output, open_input

    parsed = _parse("cal", argv)
    if parsed is None:
        return
    input_path, output = Path(parsed["input"]), Path(parsed["output"])
    tag = parsed["tag"] or os.environ.get(GLOBAL_TAG_ENV)
    if not tag:
        raise PayloadInputError(f"--tag: no global tag: give --tag or set {GLOBAL_TAG_ENV}")
    check_output(output, input_path)  # before asking the service: a bad input fails fast
    with open_input(input_path, "elec", step.BRANCHES, needs="juno-payload elecsim"):
        pass
    client = client_from_env()
    try:
        conditions = load_conditions(client, tag, parsed["run"])
    finally:
        client.close()
    summary = step.run(parsed, conditions)
    summary.extra["conditions_endpoint"] = client.last_endpoint
    click.echo(summary.to_json())


@main.command(**STEP)
@ARGV
@_files
def rec(argv: tuple[str, ...]) -> None:
    """Reconstruct each event's energy and vertex."""
    from juno_dcs.payloads import rec as step

    parsed = _parse("rec", argv)
    if parsed is not None:
        click.echo(step.run(parsed).to_json())


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
