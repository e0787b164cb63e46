"""`juno-dcs spade-sim`: SPADE, simulated. Writes raw files to the grid's IHEP_DISK and announces each on Kafka.

    juno-dcs spade-sim [--home DIR] --files N [--days D] [--size 1MB] [--rate F | --mbps M] [--stream S ...]
                       [--duplicate F] [--malformed F] [--wrong-checksum F] [--missing-file F] [--no-files] [--json]
    juno-dcs spade-sim --bootstrap HOST:PORT [--api-version 0.9] --location-prefix URL --no-files ...   (no grid)

docs/ingest.md describes the options, the faults and the summary.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from juno_dcs.clikit import EXIT_CODES_EPILOG, KitCommand, grid_settings, home_option
from juno_dcs.daemon import signals_set
from juno_dcs.errors import GridStateError
from juno_dcs.ingest.kafka_config import KafkaSettings
from juno_dcs.ingest.spade_sim import (
    DEFAULT_MB_S,
    DEFAULT_SIZE,
    SCALE,
    Delivery,
    Gfal2Writer,
    Pacer,
    PlanError,
    Publisher,
    SimError,
    SimPlan,
    Summary,
    simulate,
)
from juno_dcs.tokens.fetch import discover_token
from juno_dcs.tokens.storage import STORAGE_AUDIENCE, TokenGetter, write_scope

RAW_CLIENT = "rawdata"  # the issuer's client of the raw-data service, as whom SPADE writes
DEFAULT_TOPIC = "spade.files"
METADATA_WAIT_MS = 15000  # how long to wait for Kafka to know the topic
INTERRUPTED = 130  # exit status after SIGINT/SIGTERM, as a shell reports an interrupted command
# SimPlan's fields -> the options that set them, for error messages
_OPTION_OF = {
    "files": "--files", "days": "--days", "start": "--start-date", "size": "--size", "rate": "--rate",
    "mbps": "--mbps", "streams": "--stream", "first_run": "--run", "files_per_run": "--files-per-run",
    "seed": "--seed", "location_prefix": "--location-prefix", "duplicate": "--duplicate",
    "malformed": "--malformed", "wrong_checksum": "--wrong-checksum", "missing_file": "--missing-file",
    "faults": "--malformed' / '--wrong-checksum' / '--missing-file",
}


def _size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from juno_dcs.topology.sizes import SizeError, parse_size

    try:
        return parse_size(value)
    except SizeError as exc:
        raise click.BadParameter(exc.reason) from None


def _api_version(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(part) for part in value.split("."))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a version such as 0.9 or 2.8.1") from None


def _plan_error(exc: ValidationError) -> click.BadParameter:
    """The first problem of a plan, naming the option to change."""
    first = exc.errors()[0]
    cause = first.get("ctx", {}).get("error")
    names = [cause.field] if isinstance(cause, PlanError) else [str(p) for p in first["loc"]]
    options = [_OPTION_OF[name] for name in names if name in _OPTION_OF]
    return click.BadParameter(str(first["msg"]).removeprefix("Value error, "),
                              param_hint=f"'{options[-1]}'" if options else None)


@click.command("spade-sim", cls=KitCommand,
               epilog=f"{EXIT_CODES_EPILOG} Interrupted (SIGINT, SIGTERM): {INTERRUPTED}, as a shell reports it.")
@home_option
@click.option("--files", type=click.IntRange(1, 10_000_000), default=100, show_default=True, help="Files to deliver.")
@click.option("--days", type=click.IntRange(1, 3660), default=1, show_default=True,
              help="Spread the receiving times evenly over this many days.")
@click.option("--start-date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First receiving day, YYYY-MM-DD (default today, UTC).")
@click.option("--size", default=str(DEFAULT_SIZE), show_default=True, callback=_size, metavar="BYTES",
              help="Bytes per file, or with a unit: 4KiB, 1MB.")
@click.option("--rate", type=click.FloatRange(min=0), default=None,
              help="Messages per second; 0: as fast as possible.")
@click.option("--mbps", type=click.FloatRange(min=0, min_open=True), default=None,
              help=f"MB of files per second [default: {DEFAULT_MB_S:g}, JUNO's 60 MB/s / {SCALE}].")
@click.option("--stream", "streams", multiple=True, default=("physics",), show_default=True,
              help="Data stream (repeatable: files go to the streams in turn).")
@click.option("--run", "first_run", type=click.IntRange(0, 999999), default=1, show_default=True,
              help="Run number of the first files.")
@click.option("--files-per-run", type=click.IntRange(1, 99999), default=100, show_default=True,
              help="Files of one stream in one run.")
@click.option("--topic", default=DEFAULT_TOPIC, show_default=True, help="Kafka topic to publish to.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of contents and faults: the same options give the same files and messages.")
@click.option("--duplicate", type=click.FloatRange(0, 1), default=0.0, help="Fraction published twice.")
@click.option("--malformed", type=click.FloatRange(0, 1), default=0.0, help="Fraction with broken messages.")
@click.option("--wrong-checksum", type=click.FloatRange(0, 1), default=0.0,
              help="Fraction whose message's adler32 is not the file's.")
@click.option("--missing-file", type=click.FloatRange(0, 1), default=0.0,
              help="Fraction announced but never written.")
@click.option("--no-files", is_flag=True, help="Write nothing, only publish (message-handling benchmarks).")
@click.option("--threads", type=click.IntRange(1, 32), default=4, show_default=True, help="Files written at once.")
@click.option("--bootstrap", default=None, metavar="HOST:PORT[,...]",
              help="Publish to this Kafka instead of the grid's.")
@click.option("--api-version", default=None, callback=_api_version, metavar="X.Y",
              help="Kafka protocol version to speak, e.g. 0.9 (default: the grid's; asked from --bootstrap).")
@click.option("--location-prefix", default=None, metavar="URL",
              help="IHEP_DISK's URL prefix (default: the grid's IHEP_DISK, root://localhost:PORT/).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal].")
def spade_sim(home: Path | None, files: int, days: int, start_date: dt.datetime | None, size: int,
              rate: float | None, mbps: float | None, streams: tuple[str, ...], first_run: int, files_per_run: int,
              topic: str, seed: int, duplicate: float, malformed: float, wrong_checksum: float, missing_file: float,
              no_files: bool, threads: int, bootstrap: str | None, api_version: tuple[int, ...] | None,
              location_prefix: str | None, as_json: bool, progress: bool | None) -> None:
    """Simulate SPADE: write raw files to IHEP_DISK and publish a "file arrived" message for each on Kafka."""
    if rate is not None and mbps is not None:
        raise click.BadParameter("give --rate or --mbps, not both", param_hint="'--rate' / '--mbps'")
    grid = _Grid(home) if bootstrap is None or location_prefix is None else None
    settings = _kafka_settings(grid, bootstrap, api_version)
    prefix = location_prefix or (grid.ihep_disk() if grid else "")  # a grid is read when no prefix is given
    try:
        plan = SimPlan.model_validate({
            "files": files, "days": days, "size": size, "rate": rate, "mbps": mbps, "streams": streams,
            "start": start_date.date() if start_date else dt.datetime.now(dt.UTC).date(),
            "first_run": first_run, "files_per_run": files_per_run, "seed": seed, "location_prefix": prefix,
            "content": not no_files,
            "faults": {"duplicate": duplicate, "malformed": malformed, "wrong_checksum": wrong_checksum,
                       "missing_file": missing_file},
        })
    except ValidationError as exc:
        raise _plan_error(exc) from None
    if not no_files:
        _trust_ca(kafka_tls=settings.security_protocol in ("SSL", "SASL_SSL"))
    token = _token_getter(grid) if not no_files else None
    summary = _run(plan, settings, topic, threads, sys.stderr.isatty() if progress is None else progress, token)
    report = summary.as_dict()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_report(report, topic)
    if summary.stopped:
        sys.exit(INTERRUPTED)


def _print_report(report: dict[str, Any], topic: str) -> None:
    faults = ", ".join(f"{k} {v}" for k, v in report["by_fault"].items() if v) or "none"
    if report["stopped"]:
        click.echo(f"stopped on request after {report['delivered']} file(s)")
    click.echo(f"published {report['published']} message(s) to {topic} in {report['elapsed_s']} s "
               f"({report['messages_per_s']}/s); wrote {report['files_written']} file(s), {report['bytes']} bytes "
               f"({report['mb_per_s']} MB/s), {report['files_present']} already there")
    click.echo(f"  received {report['first_received_at']} .. {report['last_received_at']}, "
               f"blocks: {', '.join(report['blocks']) or 'none'}")
    click.echo(f"  faults: {faults}")


def _token_getter(grid: _Grid | None) -> TokenGetter | None:
    """SPADE writes as the raw-data service: with a grid, its `rawdata` client (the secret in the home); without
    one, the token WLCG Bearer Token Discovery finds (BEARER_TOKEN, BEARER_TOKEN_FILE, ...), if any."""
    if grid is None:
        found = discover_token()
        return (lambda: found) if found else None
    from juno_dcs.grid import issuer

    source = issuer.client_auth(issuer.layout(grid.home, grid.state), RAW_CLIENT).source()
    return lambda: source.get(STORAGE_AUDIENCE, write_scope("/raw")).value


def _run(plan: SimPlan, settings: KafkaSettings, topic: str, threads: int, show_progress: bool,
         token: TokenGetter | None = None) -> Summary:
    from kafka.errors import KafkaError

    where = f"{topic} at {','.join(settings.bootstrap_servers)}"
    started = time.monotonic()
    extra: dict[str, Any] = {"max_block_ms": METADATA_WAIT_MS}
    if settings.api_version is not None and tuple(settings.api_version) < (0, 11):
        extra["enable_idempotence"] = False  # the broker cannot; saying so spares a warning
    try:
        producer = settings.producer(**extra)
        producer.partitions_for(topic)  # before any file is written: is Kafka there, does it know the topic?
    except KafkaError as exc:
        raise SimError(f"cannot publish to {where} (is Kafka up, does the topic exist?): {exc!r}") from exc
    stop = threading.Event()
    publisher = Publisher(producer, topic, Pacer(plan.files_per_second, sleep=stop.wait))
    with signals_set(stop), _progress_bar(plan.files, show_progress) as advance:
        try:
            writer = Gfal2Writer(token=token) if plan.content else None
            summary = simulate(plan, publisher, topic=topic, write=writer, threads=threads, progress=advance,
                               stop=stop)
        except KafkaError as exc:
            raise SimError(f"publishing to {where} failed: {exc!r}") from exc
        finally:
            publisher.close()
    summary.elapsed_s = time.monotonic() - started  # with the final flush
    return summary


class _Grid:
    """The grid this command talks to, read lazily from its home."""

    def __init__(self, home: Path | None) -> None:
        from juno_dcs.grid.home import GridHome

        self.home = GridHome(grid_settings(home).home)
        try:
            self.state = self.home.load_state()
        except GridStateError as exc:
            raise GridStateError(f"{exc}; or, without a grid, give --bootstrap and --location-prefix") from exc

    def ihep_disk(self) -> str:
        cfg = self.home.xrootd_etc / "IHEP_DISK.cfg"
        if not cfg.exists():
            raise click.UsageError(f"the grid in {self.home.root} has no XRootD IHEP_DISK ({cfg}): "
                                   "give --location-prefix")
        for line in cfg.read_text().splitlines():  # the port the SE listens on, as its configuration says
            if line.startswith("xrd.port "):  # the XRootD protocol: one multiplexed connection for all writes
                return f"root://localhost:{int(line.split()[1])}/"
        raise SimError(f"{cfg}: no xrd.port line")


def _kafka_settings(grid: _Grid | None, bootstrap: str | None, api_version: tuple[int, ...] | None) -> KafkaSettings:
    """--bootstrap's Kafka, or else the grid's."""
    if bootstrap is not None:
        try:
            return KafkaSettings(bootstrap_servers=bootstrap.split(","), api_version=api_version,
                                 client_id="juno-dcs-spade-sim")
        except ValidationError as exc:
            raise click.BadParameter(str(exc.errors()[0]["msg"]).removeprefix("Value error, "),
                                     param_hint="'--bootstrap'") from None
    if grid is None:
        raise click.UsageError("give --bootstrap, or a grid with --home")
    from juno_dcs.grid.kafka import kafka_settings

    settings = kafka_settings(grid.state)
    return settings if api_version is None else settings.model_copy(update={"api_version": api_version})


def _trust_ca(kafka_tls: bool) -> None:
    """gfal2 (davix) finds trusted CAs through X509_CERT_DIR: the grid's CA unless one is set already. When Kafka
    is not reached over TLS, OpenSSL's defaults point at that CA too: otherwise it parses the system bundle
    again for every HTTPS session gfal2 opens, which costs ~15 times the CPU of writing a small file."""
    from juno_dcs.grid.pki import cert_dir
    from juno_dcs.settings import GridSettings

    ca_dir = os.environ.setdefault("X509_CERT_DIR", str(cert_dir(GridSettings().pki_dir)))
    if not kafka_tls:
        os.environ["SSL_CERT_DIR"] = ca_dir
        bundle = Path(ca_dir) / "ca.pem"
        if bundle.exists():
            os.environ["SSL_CERT_FILE"] = str(bundle)


@contextmanager
def _progress_bar(total: int, show: bool) -> Iterator[Callable[[Delivery], None] | None]:
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]spade-sim"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[day]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("deliveries", total=total, day="")

        def advance(delivery: Delivery) -> None:
            bar.update(task, advance=1, day=f"{delivery.received_at:%Y-%m-%d %H:%M}")

        yield advance
