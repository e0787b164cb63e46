"""`juno-dcs conditions ...`: the condition data's admin commands (writer account) and a reading client.

    juno-dcs conditions init                                   create the tables (needs CREATE rights)
    juno-dcs conditions create-tag TAG [--description TEXT]
    juno-dcs conditions add TAG FOLDER RUNS FILE [--type T]    RUNS: 100-200, 100- or 100; FILE or - (stdin)
    juno-dcs conditions lock TAG
    juno-dcs conditions list [--json]
    juno-dcs conditions show TAG [--json]
    juno-dcs conditions export TAG FILE                        FILE or - (stdout)
    juno-dcs conditions import FILE
    juno-dcs conditions get TAG RUN [FOLDER] [--proxy URL ...] [--server URL ...] [--allow-open] [-o FILE]

The database comes from --db, else $JUNO_CONDITIONS_DB_URL, else the grid's home
(<home>/etc/conditions-admin.yaml, written by `juno-dcs up`). Each write is one transaction: a bad argument
or a bad file writes nothing, and the error names what is wrong and where.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from juno_dcs.clikit import EXIT_CODES_EPILOG, KitGroup, home_option, home_parameter
from juno_dcs.conditions.errors import ConditionsInputError, DatabaseUnavailable
from juno_dcs.conditions.models import PAYLOAD_TYPES, PmtGains, RunRange, TimingOffsets, parse_export

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

ADMIN_FILE = Path("etc") / "conditions-admin.yaml"


def resolve_db_url(db_url: str | None, home: Path | None) -> str:
    if db_url:
        return db_url
    if os.environ.get("JUNO_CONDITIONS_DB_URL"):
        return os.environ["JUNO_CONDITIONS_DB_URL"]
    root = home or Path(os.environ.get("JUNO_DCS_HOME", "var/grid"))
    path = root / ADMIN_FILE
    try:
        url = yaml.safe_load(path.read_text())["database_url"]
    except FileNotFoundError as exc:
        raise ConditionsInputError(f"no conditions database: give --db URL, set JUNO_CONDITIONS_DB_URL or run "
                                   f"`juno-dcs up` so that {path} exists") from exc
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConditionsInputError(f"{path}: expected a YAML mapping with database_url ({exc})") from exc
    return str(url)


@contextmanager
def _transaction(ctx: click.Context) -> Iterator[Connection]:
    import sqlalchemy as sa  # here: every other juno-dcs command would pay for the import

    from juno_dcs.conditions import db

    url = resolve_db_url(ctx.obj["db"], ctx.obj["home"])
    engine = db.make_engine(url, pool_size=1)
    where = sa.engine.make_url(url).render_as_string(hide_password=True)
    try:
        with engine.begin() as conn:
            yield conn
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise DatabaseUnavailable(f"conditions database {where}: {exc.orig or exc}") from exc
    except sa.exc.ProgrammingError as exc:
        raise DatabaseUnavailable(f"conditions database {where}: {exc.orig or exc} (run `init`? rights?)") from exc
    finally:
        engine.dispose()


def _echo_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, default=str))


def _set_home(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["home"] = value


class _Group(KitGroup):
    """Every command also takes --home after its name, like the other juno-dcs commands."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.append(home_parameter(expose_value=False, callback=_set_home, is_eager=False,
                                         help="The grid's home (as for the group)."))
        super().add_command(cmd, name)


@click.group(cls=_Group, epilog=EXIT_CODES_EPILOG)
@click.option("--db", "db_url", default=None, metavar="URL", help="SQLAlchemy URL of the writer account.")
@home_option
@click.pass_context
def conditions(ctx: click.Context, db_url: str | None, home: Path | None) -> None:
    """Condition data: global tags, folders, intervals of validity, payloads."""
    ctx.obj = {"db": db_url, "home": home}


@conditions.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the tables (idempotent; the grid does it with its admin account at `up`)."""
    from juno_dcs.conditions import db

    with _transaction(ctx) as conn:
        db.create_schema(conn)
    click.echo("conditions tables ready")


@conditions.command("create-tag")
@click.argument("tag")
@click.option("--description", default="", help="What the tag is for.")
@click.pass_context
def create_tag(ctx: click.Context, tag: str, description: str) -> None:
    """Create an open global tag."""
    from juno_dcs.conditions import logic

    with _transaction(ctx) as conn:
        info, created = logic.create_tag(conn, tag, description)
    click.echo(f"global tag {info.name} {'created' if created else 'exists'} ({info.state})")


@conditions.command()
@click.argument("tag")
@click.argument("folder")
@click.argument("runs")
@click.argument("file", type=click.File("rb"))
@click.option("--type", "payload_type", type=click.Choice(PAYLOAD_TYPES), default=None,
              help="The folder's payload type (needed when the folder is new).")
@click.option("--folder-description", default="", help="A new folder's description.")
@click.pass_context
def add(ctx: click.Context, tag: str, folder: str, runs: str, file: Any, payload_type: str | None,
        folder_description: str) -> None:
    """Add FILE as FOLDER's payload for RUNS in the open TAG."""
    from juno_dcs.conditions import logic

    run_range = RunRange.parse(runs)
    data = file.read()
    with _transaction(ctx) as conn:
        info = logic.folder_for(conn, folder, payload_type, folder_description)
        added = logic.add_payload(conn, tag, info, run_range, data)
    what = "added" if added.new_iov else "already the newest interval (nothing to do)"
    click.echo(f"{tag} {folder} runs {run_range.first}-{run_range.last}: payload {added.payload_hash} {what}")


@conditions.command()
@click.argument("tag")
@click.pass_context
def lock(ctx: click.Context, tag: str) -> None:
    """Lock TAG: it never changes again, and production may use it."""
    from juno_dcs.conditions import logic

    with _transaction(ctx) as conn:
        info, now = logic.lock_tag(conn, tag)
    click.echo(f"global tag {info.name} {'locked' if now else 'was locked already'}")


@conditions.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_tags(ctx: click.Context, as_json: bool) -> None:
    """The global tags."""
    from juno_dcs.conditions import logic

    with _transaction(ctx) as conn:
        tags = logic.list_tags(conn)
    if as_json:
        _echo_json([t.model_dump(mode="json") for t in tags])
        return
    for t in tags:
        click.echo(f"{t.name:32} {t.state:7} {t.modified:%Y-%m-%d %H:%M:%S}  {t.description}")


@conditions.command()
@click.argument("tag")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show(ctx: click.Context, tag: str, as_json: bool) -> None:
    """One global tag: its folders and intervals of validity."""
    from juno_dcs.conditions import logic

    with _transaction(ctx) as conn:
        details = logic.show_tag(conn, tag)
    if as_json:
        _echo_json({**details.tag.model_dump(mode="json"), "folders": details.folders,
                    "iovs": [i.model_dump() for i in details.iovs]})
        return
    t = details.tag
    click.echo(f"{t.name} ({t.state}) {t.description}\n  created {t.created}, modified {t.modified}")
    for f in details.folders:
        click.echo(f"  folder {f['name']} ({f['payload_type']}): {f['iovs']} interval(s), "
                   f"runs {f['first_run']}-{f['last_run']}")
    for i in details.iovs:
        click.echo(f"    {i.folder:20} {i.first_run:>10}-{i.last_run:<10} {i.payload_hash} {i.payload_size} B")


@conditions.command()
@click.argument("tag")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.pass_context
def export(ctx: click.Context, tag: str, file: Path) -> None:
    """Write TAG with its folders, intervals and payloads to FILE (JSON)."""
    from juno_dcs.conditions import logic

    with _transaction(ctx) as conn:
        document = logic.export_tag(conn, tag)
    text = document.model_dump_json(indent=1)
    if str(file) == "-":
        click.echo(text)
        return
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(file)
    click.echo(f"global tag {tag} exported to {file} ({len(document.iovs)} intervals)")


@conditions.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def import_tag(ctx: click.Context, file: Path) -> None:
    """Create the global tag of an export FILE (all or nothing)."""
    from juno_dcs.conditions import logic

    document = parse_export(file.read_text(errors="replace"), str(file))
    with _transaction(ctx) as conn:
        created = logic.import_tag(conn, document)
    click.echo(f"global tag {document.name} {'imported' if created else 'is there already (same content)'}")


@conditions.command()
@click.argument("tag")
@click.argument("run", type=int)
@click.argument("folder", required=False)
@click.option("--proxy", "proxies", multiple=True, envvar="JUNO_CONDITIONS_PROXIES", metavar="URL",
              help="A Squid in front of the service, nearest first (repeatable).")
@click.option("--server", "servers", multiple=True, envvar="JUNO_CONDITIONS_SERVERS", metavar="URL",
              help="A conditions server, tried after the proxies (repeatable).")
@click.option("--allow-open", is_flag=True, help="Read an open tag too.")
@click.option("-o", "--output", type=click.File("wb"), default=None, help="Write FOLDER's payload bytes here.")
def get(tag: str, run: int, folder: str | None, proxies: tuple[str, ...], servers: tuple[str, ...],
        allow_open: bool, output: Any) -> None:
    """Read the conditions of RUN in TAG through the proxies and servers (a job's view)."""
    from juno_dcs.conditions.client import ConditionsClient

    client = ConditionsClient(proxies, servers, allow_open=allow_open)
    try:
        if folder is None:
            _echo_json({name: ref.__dict__ for name, ref in client.refs(tag, run).items()})
            return
        ref = client.ref(tag, folder, run)
        data = client.payload_bytes(ref.payload_hash)
        if output is not None:
            output.write(data)
            return
        value = client.decoded(ref)
        if isinstance(value, PmtGains | TimingOffsets):
            click.echo(f"{ref.folder}: {len(value.channel)} channels, runs {ref.first_run}-{ref.last_run}, "
                       f"sha256 {ref.payload_hash}")
        elif isinstance(value, bytes):
            sys.stdout.buffer.write(value)
        else:
            _echo_json(value.model_dump() if hasattr(value, "model_dump") else value)
    finally:
        client.close()
