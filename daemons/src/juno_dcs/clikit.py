"""The one kit the project's command lines are built with (click): exit codes, errors, shared options.

Exit codes, the same for every command (docs/admin.md, "Exit codes"):

    0  done
    1  failed: a service, the grid's state, a check that found problems
    2  bad input: an argument, a file, a setting (click's own usage errors exit 2 as well)
    3  still waiting: what could be done is done, the rest is pending (`--wait` ran out, a grid still starting,
       a service that did not answer and is worth retrying)

    KitGroup / KitCommand    click classes: a JunoDcsError raised by a command is printed as
                             "<prog>: error: <message>" and mapped to its `exit_code`; sub-commands and sub-groups
                             of a KitGroup are kit classes too. <prog> is the root command's name
                             (`KitGroup(path_in_errors=True)`: the command's whole path, "juno-payload cal")
    home_option              --home DIR (the grid's home; default $JUNO_DCS_HOME or ./var/grid);
                             home_parameter: the same as a click.Option
    grid_settings(home, ...) GridSettings with overrides; a bad value is a ConfigError (exit 2)
    log_option               --log-json (one JSON object per log line; --json-logs is its hidden old spelling)
    daemon_options           --run-once, --sleep-time SECONDS (juno_dcs.daemon)
    use_rucio_config(path)   point the Rucio client at a configuration file (RUCIO_CONFIG): the one place
    EXIT_CODES_EPILOG        the table above in two lines, for a command's --help
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from juno_dcs.errors import ConfigError, JunoDcsError

if TYPE_CHECKING:
    from juno_dcs.settings import GridSettings

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_WAITING = 0, 1, 2, 3
EXIT_CODES_EPILOG = "Exit codes: 0 done, 1 failed, 2 bad input (arguments, files, settings), 3 still waiting."


def exit_code(exc: BaseException) -> int:
    """The exit code for an error a command raised (EXIT_FAILED for anything outside the tree)."""
    return exc.exit_code if isinstance(exc, JunoDcsError) else EXIT_FAILED


def error_line(ctx: click.Context, exc: BaseException) -> str:
    """"<prog>: error: <message>", <prog> as the root group says (its name, or the command's path)."""
    root = ctx.find_root()
    if getattr(root.command, "path_in_errors", False):
        prog = ctx.command_path
    else:
        prog = root.command.name or root.info_name or "juno-dcs"
    return f"{prog}: error: {exc}"


def _invoke_mapped(ctx: click.Context, invoke: Callable[[click.Context], Any]) -> Any:
    try:
        return invoke(ctx)
    except JunoDcsError as exc:
        click.echo(error_line(ctx, exc), err=True)
        ctx.exit(exit_code(exc))


class KitCommand(click.Command):
    """A click command whose JunoDcsError becomes a one-line message and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        return _invoke_mapped(ctx, super().invoke)


class KitGroup(click.Group):
    """A click group whose commands and sub-groups are kit classes.

    `path_in_errors=True` makes error lines start with the command's path ("juno-payload cal: error: ...")
    instead of the root's name ("juno-dcs: error: ...").
    `lazy={"name": "module:attribute"}`: commands imported only when they run or are listed (a command's start
    does not pay for every other command's imports).
    """

    command_class = KitCommand
    group_class = type  # sub-groups made with @group.group() are KitGroups too

    def __init__(self, *args: Any, path_in_errors: bool = False, lazy: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path_in_errors = path_in_errors
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        return _invoke_mapped(ctx, super().invoke)


HOME_TYPE = click.Path(file_okay=False, path_type=Path)
HOME_HELP = "The grid's home directory (default $JUNO_DCS_HOME or ./var/grid)."


def home_option(func: F) -> F:
    """--home DIR: the grid's home directory."""
    return click.option("--home", type=HOME_TYPE, default=None, help=HOME_HELP)(func)


def home_parameter(**attrs: Any) -> click.Option:
    """--home as a parameter object, for a group that adds it to each of its commands (juno-dcs conditions)."""
    return click.Option(["--home"], type=HOME_TYPE, **{"default": None, "help": HOME_HELP, **attrs})


def grid_settings(home: Path | None = None, base_port: int | None = None,
                  topology: Path | None = None, engine: str | None = None) -> GridSettings:
    """The grid's settings ($JUNO_DCS_* and the given overrides); a bad value is a ConfigError naming it."""
    from pydantic import ValidationError

    from juno_dcs.settings import GridSettings

    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    if base_port is not None:
        overrides["base_port"] = base_port
    if topology is not None:
        overrides["topology"] = topology
    if engine is not None:
        overrides["engine"] = engine
    try:
        return GridSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"bad setting {where}: {first['msg']}") from exc


def log_option(func: F) -> F:
    """--log-json: one JSON object per log line (for log shippers); --json-logs, the older spelling, is hidden."""

    @functools.wraps(func)
    def merged(*args: Any, json_logs_alias: bool = False, log_json: bool = False, **kwargs: Any) -> Any:
        return func(*args, log_json=log_json or json_logs_alias, **kwargs)

    decorated = click.option("--json-logs", "json_logs_alias", is_flag=True, hidden=True,
                             help="Old spelling of --log-json.")(merged)
    return click.option("--log-json", "log_json", is_flag=True,  # type: ignore[return-value]
                        help="Log one JSON object per line instead of text.")(decorated)


def daemon_options(default_sleep: float) -> Callable[[F], F]:
    """--run-once and --sleep-time for a program run by juno_dcs.daemon."""

    def decorate(func: F) -> F:
        func = click.option("--sleep-time", type=click.FloatRange(min=0.0), default=default_sleep,
                            show_default=True, help="Seconds between passes that found nothing to do.")(func)
        return click.option("--run-once", is_flag=True, help="Do one pass and exit.")(func)

    return decorate


def use_rucio_config(path: Path | str) -> None:
    """Make the Rucio client read `path`. Rucio finds its configuration only through $RUCIO_CONFIG, and some of
    its modules read it at import, so this runs before the first Rucio import of the process (a process that
    switches files later must also drop Rucio's cached configuration: juno_dcs.pilot.stager)."""
    if not Path(path).is_file():
        raise ConfigError(f"Rucio configuration {path}: no such file")
    os.environ["RUCIO_CONFIG"] = str(path)
