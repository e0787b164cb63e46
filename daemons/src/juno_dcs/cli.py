"""The `juno-dcs` command: run a JUNO grid on this machine.

    juno-dcs up      [--home DIR] [--base-port N]   start or update the grid (idempotent)
    juno-dcs status  [--home DIR] [--json]          processes and service health
    juno-dcs env     [--home DIR] [--account NAME]  exports for the stock rucio CLI
    juno-dcs down    [--home DIR] [--purge]         stop every process (and drop all state with --purge)
    juno-dcs install-assets [shim|node|ca ...]      what a wheel cannot carry: the XRootD shim, npm's files, the CA
    juno-dcs placement  check | plan DID | apply DID     the data placement policy (placement/*.yaml)
    juno-dcs conditions create-tag | add | lock | list | show | export | import | get   condition data
    juno-dcs db-versions | db-upgrade  [--home DIR]   the grid's own schemas: versions, upgrade to head
    juno-dcs challenge [--files N] [--size SIZE] [--mode parallel|each] [--json]   the paper's data challenge
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import click

from juno_dcs.clikit import EXIT_CODES_EPILOG, KitGroup, grid_settings, home_option, log_option

# the command groups of their own modules, imported when they run (clikit.KitGroup's `lazy`)
LAZY_COMMANDS = {
    "placement": "juno_dcs.placement.cli:placement",
    "ingest": "juno_dcs.ingest.cli:ingest",
    "raw": "juno_dcs.ingest.cli:raw",
    "spade-sim": "juno_dcs.ingest.spade_cli:spade_sim",
    "conditions": "juno_dcs.conditions.cli:conditions",
    "db-upgrade": "juno_dcs.migrations.cli:db_upgrade",
    "db-versions": "juno_dcs.migrations.cli:db_versions",
}


def _versions() -> str:
    """The project's three packages and the Rucio they run on, as installed."""
    from importlib.metadata import PackageNotFoundError, version

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    return ", ".join(f"{p} {of(p)}" for p in ("juno-dcs", "juno-rucio-policy", "juno-probes", "rucio"))


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        click.echo(_versions())
        ctx.exit(0)


@click.group(cls=KitGroup, name="juno-dcs", epilog=EXIT_CODES_EPILOG, lazy=LAZY_COMMANDS)
@click.option("-v", "--verbose", is_flag=True, help="Log what is being done.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_versions,
              help="Print the versions of the project's packages and of Rucio, and exit.")
def main(verbose: bool) -> None:
    """Run the JUNO distributed computing grid (Rucio and its services) on this machine."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@main.command()
@home_option
@click.option("--base-port", type=click.IntRange(1024, 65435), default=None,
              help="First of the grid's 100 ports (remembered; default 23000).")
@click.option("--topology", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Topology file (default: topology.yaml of JUNO_DCS_ETC_DIR, else the package's).")
@click.option("--engine", type=click.Choice(["supervisor", "swarm"]), default=None,
              help="What runs the programs: one supervisord on this host, or a Docker Swarm stack (remembered; "
                   "default supervisor; docs/deploy.md).")
def up(home: Path | None, base_port: int | None, topology: Path | None, engine: str | None) -> None:
    """Start the grid, or bring a running one in line with the topology."""
    from juno_dcs.grid.launcher import up as do_up

    report = do_up(grid_settings(home, base_port, topology, engine))
    click.echo(f"grid {'created' if report.created else 'updated'} in {report.home}")
    for line in report.actions:
        click.echo(f"  {line}")
    click.echo(f"  topology: {len(report.topology_changes)} change(s)")
    for line in report.topology_changes:
        click.echo(f"    {line}")
    for line in report.warnings:
        click.echo(f"  warning: {line}")


@main.group()
def images() -> None:
    """The grid's container images (docs/deploy.md)."""


@images.command("build")
@click.option("--force", is_flag=True, help="Rebuild even what is there (the base included).")
@click.option("--json", "as_json", is_flag=True, help="Print the tags, what was built and how long it took.")
def images_build(force: bool, as_json: bool) -> None:
    """Build the base, runtime and role images that are missing (cached by a digest of their inputs)."""
    from juno_dcs.swarm import engine
    from juno_dcs.swarm import images as built_images

    started = time.monotonic()
    docker = engine.ensure_engine(grid_settings().docker_dir)
    report = built_images.build(docker, force=force)
    sizes = built_images.sizes(docker, list(report.tags.values()))
    if as_json:
        click.echo(json.dumps({"tags": report.tags, "built": report.built, "removed": report.removed,
                               "seconds": report.seconds, "total_s": round(time.monotonic() - started, 1),
                               "bytes": sizes}, indent=2))
        return
    for role, tag in report.tags.items():
        mark = "built" if tag in report.built else "cached"
        click.echo(f"{role:14} {tag:40} {sizes.get(tag, 0) / 1e6:8.0f} MB  {mark}")
    for tag in report.removed:
        click.echo(f"untagged the earlier build {tag}")


@main.command()
@home_option
@click.option("--purge", is_flag=True, help="Also drop the grid's database and delete its home.")
def down(home: Path | None, purge: bool) -> None:
    """Stop every process of the grid."""
    from juno_dcs.grid.launcher import down as do_down

    for line in do_down(grid_settings(home), purge=purge):
        click.echo(line)


@main.command()
@home_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(home: Path | None, as_json: bool) -> None:
    """Show each process's state and each service's health (exit 0 healthy, 1 degraded, 3 stopped)."""
    from juno_dcs.grid.launcher import status as do_status

    result = do_status(grid_settings(home))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        on = " on Docker Swarm" if result.get("engine") == "swarm" else ""
        click.echo(f"grid {result['home']} (base port {result['base_port']}{on}): "
                   f"{'healthy' if result['healthy'] else 'running, degraded' if result['running'] else 'stopped'}")
        for name, url in result["services"].items():
            check = result["health"].get(name, {})
            mark = "ok " if check.get("ok") else "BAD"
            click.echo(f"  {mark} {name:<11} {url}  {check.get('detail', '')}")
        if "storage" in result["health"]:
            check = result["health"]["storage"]
            click.echo(f"  {'ok ' if check['ok'] else 'BAD'} {'storage':<11} {len(result['storage'])} XRootD SEs  "
                       f"{check['detail']}")
        for name, proc in sorted(result["processes"].items()):
            click.echo(f"  {proc['state']:<9} {name:<34} {proc['description']}")
        if result["down"]:
            click.echo(f"not running: {', '.join(result['down'])}", err=True)
    sys.exit(0 if result["healthy"] else 1 if result["running"] else 3)


@main.command()
@home_option
@click.option("--account", default="root", show_default=True, help="The Rucio account to act as.")
def env(home: Path | None, account: str) -> None:
    """Print the exports that point the stock `rucio` CLI and client at the grid:
    eval "$(juno-dcs env --account alice)" """
    from juno_dcs.grid.launcher import env_exports

    click.echo(env_exports(grid_settings(home), account), nl=False)


@main.command()
@home_option
@click.option("--account", default="root", show_default=True, help="The account whose client asks for the token.")
@click.option("--audience", default="", help="Space-separated audiences (default: every service of the grid).")
@click.option("--scope", default="", help="Space-separated scopes (default: all the account's role allows).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the token to this file (mode 0600) instead of printing it.")
def token(home: Path | None, account: str, audience: str, scope: str, out: Path | None) -> None:
    """Get a token for an account from the grid's issuer (WLCG profile; docs/security.md)."""
    from juno_dcs.grid.home import GridHome
    from juno_dcs.grid.launcher import account_token
    from juno_dcs.tokens.fetch import write_token_file

    grid_home = GridHome(grid_settings(home).home)
    got = account_token(grid_home, grid_home.load_state(), account, audience, scope)
    if out is None:
        click.echo(got.value)
    else:
        write_token_file(out, got.value)
        click.echo(f"wrote a token for {account} ({got.scope}) to {out}", err=True)


@main.command("db-stats")
@home_option
@click.option("--run-once", is_flag=True, help="One pass over the tables, print what was done as JSON, exit.")
@click.option("--interval", type=click.FloatRange(0.5, 3600), default=10.0, show_default=True,
              help="Seconds between passes.")
@click.option("--mode", type=click.Choice(["auto", "always"]), default="auto", show_default=True,
              help="auto: work only while the server's autovacuum is off; always: work regardless.")
@click.option("--release-claims-after", type=click.FloatRange(min=0.0), default=120.0, show_default=True,
              help="Give Rucio's conveyor back requests it claimed this many seconds ago and did not move on "
                   "(it skips them for 600 s otherwise); 0: never.")
@log_option
def db_stats(home: Path | None, run_once: bool, interval: float, mode: str, release_claims_after: float,
             log_json: bool) -> None:
    """Keep the grid database's planner statistics current (ANALYZE, VACUUM) where autovacuum is off; keepers
    share the tables by heartbeats."""
    import psycopg

    from juno_dcs import daemon
    from juno_dcs.errors import ServiceError
    from juno_dcs.grid import dbstats
    from juno_dcs.grid.home import GridHome
    from juno_dcs.grid.wms import database_url

    grid = GridHome(grid_settings(home).home)
    if not grid.exists():
        raise click.UsageError(f"no grid in {grid.root}: run `juno-dcs up` first")
    daemon.configure_logging(log_json)
    stop = daemon.stop_on_signals()
    try:
        done = dbstats.keep(database_url(grid.load_state()), dbstats.Thresholds(), dbstats.Mode(mode), interval,
                            stop, once=run_once, release_after=release_claims_after)
    except psycopg.Error as exc:
        raise ServiceError(f"the grid's database: {' '.join(str(exc).split())}") from exc
    if run_once:
        click.echo(json.dumps([{"table": f"{d.schema}.{d.table}", "action": d.action.value,
                                "seconds": round(d.seconds, 3), "reason": d.reason} for d in done], indent=2))


@main.command("init-ca")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the CA lives (default JUNO_DCS_PKI_DIR: var/pki in the checkout after `make setup`).")
def init_ca(directory: Path | None) -> None:
    """Create the grid's local certificate authority unless it exists (run by `make setup`)."""
    from juno_dcs.grid.pki import ensure_ca
    from juno_dcs.settings import GridSettings

    target = directory or GridSettings().pki_dir
    click.echo(f"{'created' if ensure_ca(target) else 'kept'} the grid CA in {target}")


@main.command("install-assets")
@click.argument("which", nargs=-1, type=click.Choice(["shim", "node", "ca"]))
def install_assets(which: tuple[str, ...]) -> None:
    """Make what the wheel cannot carry where the settings say (all three unless named): the XRootD loopback shim
    (JUNO_DCS_BIND_SHIM, needs cc), npm's packages (JUNO_DCS_NODE_MODULES, needs npm) and the grid CA
    (JUNO_DCS_PKI_DIR). Idempotent; `make setup` runs it for the checkout."""
    from juno_dcs.grid.assets import ASSETS, install
    from juno_dcs.settings import GridSettings

    for line in install(GridSettings(), which or ASSETS):
        click.echo(line)


@main.command()
@home_option
@click.option("--files", type=click.IntRange(1, 99_999), default=20, show_default=True,
              help="Files per destination (one raw block).")
@click.option("--size", "size_text", default="100MB", show_default=True,
              help="Size of each file: 100MB, 1GB, 512KiB ... (decimal kB/MB/GB/TB, binary KiB/MiB/GiB/TiB).")
@click.option("--mode", type=click.Choice(["parallel", "each"]), default="parallel", show_default=True,
              help="parallel: one rule per T1 disk made at once; each: one T1 disk after the other.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Bare copies at once per link (default: the transfer service's starting limit per link).")
@click.option("--interval", type=click.FloatRange(0.1, 10), default=0.5, show_default=True,
              help="Seconds between samples of the rules, the destinations and the transfer service.")
@click.option("--timeout", type=click.FloatRange(min=1), default=None,
              help="Seconds each stage's rules may take to be OK (default: 300 + 1 s per 5 MB to move).")
@click.option("--keep", is_flag=True, help="Keep the rules, replicas and files (removed by default).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def challenge(home: Path | None, files: int, size_text: str, mode: str, concurrency: int | None, interval: float,
              timeout: float | None, keep: bool, as_json: bool) -> None:
    """Replicate N files from IHEP_DISK to CNAF_DISK, JINR_DISK and IN2P3_DISK through Rucio and the transfer
    service, copy the same bytes bare (curl -X COPY), compare the two and write a report into the grid's home
    (docs/challenge.md). Needs root: the files are written into the storage elements' directories."""
    from juno_dcs.challenge import report
    from juno_dcs.challenge.measure import parse_size
    from juno_dcs.challenge.run import ChallengeOptions, run_challenge
    from juno_dcs.errors import ConfigError

    try:
        size = parse_size(size_text)
    except ConfigError as exc:
        raise ConfigError(f"--size: {exc}") from exc
    options = ChallengeOptions(files=files, size=size, mode="each" if mode == "each" else "parallel",
                               concurrency=concurrency, interval=interval, keep=keep, timeout=timeout)
    settings = grid_settings(home)
    started = time.monotonic()

    def progress(line: str) -> None:
        click.echo(f"challenge [{time.monotonic() - started:6.1f} s] {line}", err=True)

    result = run_challenge(settings, options, progress, lambda r: report.write(r, settings.home))
    figures = result.as_json()
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    phases = figures["phases"]
    click.echo(f"{figures['mode']}: {figures['files']} files of {figures['size_bytes'] / 1e6:g} MB to "
               f"{len(figures['links'])} destinations, {figures['total_bytes'] / 1e9:.2f} GB in all")
    click.echo(f"  through Rucio   {figures['total_mb_per_s']:9.1f} MB/s  ({figures['total_seconds']:.1f} s)")
    click.echo(f"  bare copies     {figures['bare_mb_per_s']:9.1f} MB/s  ({figures['bare_seconds']:.1f} s, "
               f"{figures['concurrency']} per link at once)")
    click.echo(f"  challenge ratio {figures['challenge_ratio']:9.3f}")
    for link in figures["links"]:
        recorded = link["service"] or {}
        click.echo(f"  {link['source']} -> {link['destination']:<11} {link['mb_per_s']:8.1f} MB/s  "
                   f"{link['seconds']:6.1f} s  (bare {link['bare_mb_per_s']:.1f} MB/s; at the transfer service: "
                   f"up to {link['peak_active']} at once, {recorded.get('mean_copy_s')} s per copy against "
                   f"{link['bare_mean_copy_s']:.2f} s bare, checksums {recorded.get('verify_checksum')})")
    click.echo(f"  where the time went: submission {phases['submission_s']:.1f} s, "
               f"startup {phases['startup_s']:.1f} s, "
               f"copying {phases['copying_s']:.1f} s (bare {phases['bare_s']:.1f} s, "
               f"{phases['copy_excess_per_file_s']:+.3f} s per file), finishing {phases['finishing_s']:.1f} s; "
               f"the conveyor's submissions spread over {phases['submission_spread_s']:.0f} s")
    click.echo(f"  report: {figures['report']}")
    if figures["cleaned"]:
        click.echo("  removed the rules, replicas and files" + (
            f"; left: {'; '.join(figures['cleanup_problems'])}" if figures["cleanup_problems"] else ""))
    else:
        click.echo(f"  kept {figures['dataset']} and its rules: {', '.join(figures['rules'].values())}, "
                   f"{figures['source_rule']} at the source (`rucio rule update --lifetime 1 RULE` removes one)")

