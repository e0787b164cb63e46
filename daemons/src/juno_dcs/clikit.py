"""The one kit the project's command lines are built with (click): exit codes, errors, shared options.

Exit codes, the same for every command (docs/admin.md, "Exit codes"):

    0  done
    1  failed: a service, the grid's state, a check that found problems
    2  bad input: an argument, a file, a setting (click's own usage errors exit 2 as well)
    3  still waiting: what could be done is done, the rest is pending (`--wait` ran out, a grid still starting)

    KitGroup / KitCommand    click classes: a JunoDcsError raised by a command is printed as
                             "<prog>: error: <message>" and mapped to its `exit_code`; sub-commands and sub-groups
                             of a KitGroup are kit classes too
    home_option              --home DIR (the grid's home; default $JUNO_DCS_HOME or ./var/grid)
    grid_settings(home, ...) GridSettings with overrides; a bad value is a ConfigError (exit 2)
    log_option               --log-json (one JSON object per log line)
    daemon_options           --run-once, --sleep-time SECONDS (juno_dcs.daemon)
    use_rucio_config(path)   point the Rucio client at a configuration file (RUCIO_CONFIG), the one place
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from juno_dcs.errors import ConfigError, JunoDcsError
from juno_dcs.settings import GridSettings

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_WAITING = 0, 1, 2, 3


def exit_code(exc: BaseException) -> int:
    """The exit code for an error a command raised (EXIT_FAILED for anything outside the tree)."""
    return exc.exit_code if isinstance(exc, JunoDcsError) else EXIT_FAILED


class KitCommand(click.Command):
    """A click command whose JunoDcsError becomes a one-line message and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JunoDcsError as exc:
            prog = ctx.find_root().info_name or "juno-dcs"
            click.echo(f"{prog}: error: {exc}", err=True)
            ctx.exit(exit_code(exc))


class KitGroup(click.Group):
    """A click group whose commands and sub-groups are kit classes."""

    command_class = KitCommand
    group_class = type  # sub-groups made with @group.group() are KitGroups too

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JunoDcsError as exc:
            prog = ctx.find_root().info_name or "juno-dcs"
            click.echo(f"{prog}: error: {exc}", err=True)
            ctx.exit(exit_code(exc))


def home_option(func: F) -> F:
    """--home DIR: the grid's home directory."""
    return click.option(
        "--home", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="The grid's home directory (default $JUNO_DCS_HOME or ./var/grid).",
    )(func)


def grid_settings(home: Path | None = None, base_port: int | None = None,
                  topology: Path | None = None) -> GridSettings:
    """The grid's settings ($JUNO_DCS_* and the given overrides); a bad value is a ConfigError naming it."""
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    if base_port is not None:
        overrides["base_port"] = base_port
    if topology is not None:
        overrides["topology"] = topology
    try:
        return GridSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"bad setting {where}: {first['msg']}") from exc


def log_option(func: F) -> F:
    """--log-json: one JSON object per log line (for log shippers)."""
    return click.option("--log-json", "log_json", is_flag=True,
                        help="Log one JSON object per line instead of text.")(func)


def daemon_options(default_sleep: float) -> Callable[[F], F]:
    """--run-once and --sleep-time for a program run by juno_dcs.daemon."""

    def decorate(func: F) -> F:
        func = click.option("--sleep-time", type=click.FloatRange(min=0.0), default=default_sleep,
                            show_default=True, help="Seconds between passes that found nothing to do.")(func)
        return click.option("--run-once", is_flag=True, help="Do one pass and exit.")(func)

    return decorate


def use_rucio_config(path: Path | str) -> None:
    """Make the Rucio client read `path`. Rucio finds its configuration only through $RUCIO_CONFIG, and some of
    its modules read it at import, so this runs before the first Rucio import of the process."""
    if not Path(path).is_file():
        raise ConfigError(f"Rucio configuration {path}: no such file")
    os.environ["RUCIO_CONFIG"] = str(path)
