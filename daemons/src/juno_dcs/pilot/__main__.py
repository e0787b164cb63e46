"""`juno-pilot run|factory`: the pilot and the pilot factory (docs/wms.md "Pilots and the pilot factory").

    juno-pilot [--log-json] run --dispatcher URL --site S --queue Q --cores N --memory-mb M --walltime-s W \\
                   --lifetime-s L --workdir DIR --rucio-configs DIR [--pilot-id ID] [--run-once]
                   [--token-issuer URL --token-client-id ID --token-secret-file FILE [--token-ca-file FILE]]
    juno-pilot [--log-json] factory --config FILE [--run-once]

Exit codes (the kit's, juno_dcs.clikit): 0 the pilot's life ended normally (lifetime, no work, SIGTERM); 1 it gave
up on the dispatcher, or another failure; 2 it could not start (a bad argument, directory or configuration).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import click

from juno_dcs import logsetup
from juno_dcs.clikit import KitGroup, log_option
from juno_dcs.errors import ConfigError

logger = logging.getLogger("juno_dcs.pilot")
EPILOG = ("Exit codes: 0 the pilot's life ended normally, 1 it gave up on the dispatcher (or failed), "
          "2 it could not start (bad input).")
POSITIVE_INT = click.IntRange(min=0, min_open=True)
POSITIVE_FLOAT = click.FloatRange(min=0, min_open=True)
DIRECTORY = click.Path(file_okay=False, path_type=Path)


def _logging(log_json: bool) -> None:
    logsetup.configure(log_json, quiet=("urllib3", "gfal2", "dogpile"))


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set `stop` (juno_dcs.daemon's helper): the running job is failed as `lost` by the pilot."""
    from juno_dcs.daemon import stop_on_signals

    def _say(signum: int) -> None:
        logger.warning("signal %d: stopping (the current job is finished or failed cleanly)", signum)

    stop_on_signals(stop, on_stop=_say)


@click.group(cls=KitGroup, name="juno-pilot", epilog=EPILOG)
@log_option
def main(log_json: bool) -> None:
    """The pilot and the pilot factory."""
    _logging(log_json)


@main.command(epilog=EPILOG)
@click.option("--dispatcher", required=True, help="the dispatcher's URL (juno-wms serve)")
@click.option("--site", required=True)
@click.option("--queue", required=True)
@click.option("--cores", type=POSITIVE_INT, required=True, help="cores of this slot")
@click.option("--memory-mb", type=POSITIVE_INT, required=True,
              help="memory of this slot (a job gets memory-mb x its cores / cores, enforced on its RSS)")
@click.option("--walltime-s", type=POSITIVE_INT, required=True, help="the slot's walltime per job")
@click.option("--lifetime-s", type=POSITIVE_FLOAT, required=True,
              help="the pilot takes no job that would run past this many seconds after its start")
@click.option("--workdir", type=DIRECTORY, required=True, help="one directory per job is made (and removed) here")
@click.option("--rucio-configs", type=DIRECTORY, required=True, help="directory of <account>.cfg client files")
@click.option("--pilot-id", default=None, help="default: <queue>-<host>-<random>")
@click.option("--run-once", is_flag=True, help="run at most one job, then exit")
@click.option("--payload-program", default=None, help="default: juno-payload next to this Python")
@click.option("--monitor-interval", type=POSITIVE_FLOAT, default=0.5, show_default=True,
              help="seconds between two looks at the payload's memory")
@click.option("--heartbeat-s", type=POSITIVE_FLOAT, default=None,
              help="seconds between heartbeats (default: a third of the job's lease, at most 60)")
@click.option("--kill-grace-s", type=POSITIVE_FLOAT, default=5.0, show_default=True,
              help="SIGTERM -> SIGKILL delay when a payload is ended for walltime, a kill or a stop")
@click.option("--keep-workdir", is_flag=True, help="leave each job's directory (debugging)")
@click.option("--stage-scheme", default=None,
              help="the protocol for stage-in and stage-out, e.g. root (default: the RSEs' order)")
@click.option("--token-issuer", default=None, help="the token issuer of the pilot's client (its token for the "
              "dispatcher, refreshed before it runs out); default: WLCG token discovery (BEARER_TOKEN_FILE)")
@click.option("--token-client-id", default="pilot", show_default=True, help="the pilot's client id")
@click.option("--token-secret-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="the file (mode 0600) holding the client's secret")
@click.option("--token-ca-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="the CA that vouches for the issuer (default: the system's)")
@click.option("--token-audience", default="juno-wms", show_default=True, help="the dispatcher's audience")
def run(dispatcher: str, site: str, queue: str, cores: int, memory_mb: int, walltime_s: int, lifetime_s: float,
        workdir: Path, rucio_configs: Path, pilot_id: str | None, run_once: bool, payload_program: str | None,
        monitor_interval: float, heartbeat_s: float | None, kill_grace_s: float, keep_workdir: bool,
        stage_scheme: str | None, token_issuer: str | None, token_client_id: str, token_secret_file: Path | None,
        token_ca_file: Path | None, token_audience: str) -> None:
    """Run jobs from the dispatcher in this slot."""
    from juno_dcs.pilot.job import PilotSettings
    from juno_dcs.pilot.pilot import Pilot
    from juno_dcs.wms.client import WmsClient

    token = _pilot_token(token_issuer, token_client_id, token_secret_file, token_ca_file, token_audience)
    if not rucio_configs.is_dir():
        raise ConfigError(f"--rucio-configs {rucio_configs} is not a directory")
    workdir.mkdir(parents=True, exist_ok=True)
    settings = PilotSettings(
        dispatcher=dispatcher, site=site, queue=queue, cores=cores, memory_mb=memory_mb,
        walltime_s=walltime_s, lifetime_s=lifetime_s, workdir=workdir.resolve(),
        rucio_configs=rucio_configs.resolve(),
        pilot_id=pilot_id or f"{queue}-{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        payload_program=payload_program or str(Path(sys.executable).parent / "juno-payload"),
        run_once=run_once, poll_s=monitor_interval, grace_s=kill_grace_s,
        heartbeat_s=heartbeat_s, keep_workdir=keep_workdir, stage_scheme=stage_scheme)
    stop = threading.Event()
    _stop_on_signals(stop)
    sys.exit(Pilot(settings, WmsClient(dispatcher, token=token), stop).run())


def _pilot_token(issuer: str | None, client_id: str, secret_file: Path | None, ca_file: Path | None,
                 audience: str) -> Any:
    """The pilot's token provider: its client's (kept and refreshed), or the one WLCG discovery finds, or none."""
    from pydantic import ValidationError

    from juno_dcs.tokens.config import ClientAuth
    from juno_dcs.tokens.fetch import discover_token
    from juno_dcs.wms.credentials import PILOT_SCOPES, client_token, user_token

    if issuer is None:
        return user_token() if discover_token() is not None else None
    if secret_file is None:
        raise ConfigError("--token-issuer needs --token-secret-file (the file holding the client's secret)")
    try:
        auth = ClientAuth(issuer=issuer, client_id=client_id, secret_file=secret_file, ca_file=ca_file)
    except ValidationError as exc:
        raise ConfigError(f"--token-issuer {issuer!r}: {exc.errors()[0]['msg']}") from None
    auth.credentials()  # a missing or readable-by-others secret file fails now, with its reason
    return client_token(auth, audience, PILOT_SCOPES)


@main.command(epilog=EPILOG)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the factory's YAML configuration")
@click.option("--run-once", is_flag=True, help="one cycle, then exit (pilots go on)")
@click.option("--site", "sites", multiple=True, metavar="SITE",
              help="serve only the queues of this site (repeatable)")
@click.option("--skip-site", "skip_sites", multiple=True, metavar="SITE",
              help="serve every site's queues but this site's (repeatable)")
def factory(config_path: Path, run_once: bool, sites: tuple[str, ...], skip_sites: tuple[str, ...]) -> None:
    """Keep pilots running in line with the dispatcher's activated jobs."""
    from juno_dcs.pilot.backend import LocalProcessBackend
    from juno_dcs.pilot.config import load_config
    from juno_dcs.pilot.factory import Factory, QueueLocks, SiteFilter
    from juno_dcs.wms.client import WmsClient

    both = set(sites) & set(skip_sites)
    if both:
        raise click.BadParameter(f"{', '.join(sorted(both))} both served and skipped", param_hint="--skip-site")

    config = load_config(config_path)
    backend = LocalProcessBackend(config)
    auth = config.auth
    token = _pilot_token(auth.issuer if auth else None, auth.client_id if auth else "pilot",
                         auth.secret_file if auth else None, auth.ca_file if auth else None,
                         config.dispatcher_audience)
    pilots = Factory(config, WmsClient(config.dispatcher_url, token=token), backend,
                     QueueLocks(config.work_root / "factory"),
                     SiteFilter(only=frozenset(sites) if sites else None, skip=frozenset(skip_sites)))
    if run_once:
        started = pilots.run_once()
        logger.info("factory cycle: started %s", started or "nothing")
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    logger.info("factory: dispatcher %s, every %.0f s, pilots of %.0f s", config.dispatcher_url, config.sleep_s,
                config.pilot_lifetime_s)
    pilots.run(stop)
    backend.close()


if __name__ == "__main__":
    main()
