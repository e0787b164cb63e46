"""`juno-pilot run|factory`: the pilot and the pilot factory (docs/wms.md "Pilots and the pilot factory").

    juno-pilot run --dispatcher URL --site S --queue Q --cores N --memory-mb M --walltime-s W --lifetime-s L \\
                   --workdir DIR --rucio-configs DIR [--pilot-id ID] [--run-once]
    juno-pilot factory --config FILE [--run-once]
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from juno_dcs import logsetup
from juno_dcs.errors import JunoDcsError

logger = logging.getLogger("juno_dcs.pilot")


def _logging(json_logs: bool) -> None:
    logsetup.configure(json_logs, quiet=("urllib3", "gfal2", "dogpile"))


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set `stop` (juno_dcs.daemon's helper): the running job is failed as `lost` by the pilot."""
    from juno_dcs.daemon import stop_on_signals

    def _say(signum: int) -> None:
        logger.warning("signal %d: stopping (the current job is finished or failed cleanly)", signum)

    stop_on_signals(stop, on_stop=_say)


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not a positive number")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="juno-pilot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json-logs", action="store_true", help="log lines as JSON objects")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run jobs from the dispatcher in this slot")
    run.add_argument("--dispatcher", required=True, help="the dispatcher's URL (juno-wms serve)")
    run.add_argument("--site", required=True)
    run.add_argument("--queue", required=True)
    run.add_argument("--cores", type=_positive(int), required=True, help="cores of this slot")
    run.add_argument("--memory-mb", type=_positive(int), required=True,
                     help="memory of this slot (a job gets memory-mb x its cores / cores, enforced on its RSS)")
    run.add_argument("--walltime-s", type=_positive(int), required=True, help="the slot's walltime per job")
    run.add_argument("--lifetime-s", type=_positive(float), required=True,
                     help="the pilot takes no job that would run past this many seconds after its start")
    run.add_argument("--workdir", type=Path, required=True, help="one directory per job is made (and removed) here")
    run.add_argument("--rucio-configs", type=Path, required=True, help="directory of <account>.cfg client files")
    run.add_argument("--pilot-id", default=None, help="default: <queue>-<host>-<random>")
    run.add_argument("--run-once", action="store_true", help="run at most one job, then exit")
    run.add_argument("--payload-program", default=None, help="default: juno-payload next to this Python")
    run.add_argument("--monitor-interval", type=_positive(float), default=0.5,
                     help="seconds between two looks at the payload's memory (default 0.5)")
    run.add_argument("--heartbeat-s", type=_positive(float), default=None,
                     help="seconds between heartbeats (default: a third of the job's lease, at most 60)")
    run.add_argument("--kill-grace-s", type=_positive(float), default=5.0,
                     help="SIGTERM -> SIGKILL delay when a payload is ended for walltime, a kill or a stop")
    run.add_argument("--keep-workdir", action="store_true", help="leave each job's directory (debugging)")
    run.add_argument("--stage-scheme", default=None,
                     help="the protocol for stage-in and stage-out, e.g. root (default: the RSEs' order)")
    factory = sub.add_parser("factory", help="keep pilots running in line with the dispatcher's activated jobs")
    factory.add_argument("--config", type=Path, required=True, help="the factory's YAML configuration")
    factory.add_argument("--run-once", action="store_true", help="one cycle, then exit (pilots go on)")
    return parser


def _run(args: argparse.Namespace) -> int:
    from juno_dcs.pilot.job import PilotSettings
    from juno_dcs.pilot.pilot import Pilot
    from juno_dcs.wms.client import WmsClient

    if not args.rucio_configs.is_dir():
        print(f"juno-pilot: error: --rucio-configs {args.rucio_configs} is not a directory", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    settings = PilotSettings(
        dispatcher=args.dispatcher, site=args.site, queue=args.queue, cores=args.cores, memory_mb=args.memory_mb,
        walltime_s=args.walltime_s, lifetime_s=args.lifetime_s, workdir=args.workdir.resolve(),
        rucio_configs=args.rucio_configs.resolve(),
        pilot_id=args.pilot_id or f"{args.queue}-{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        payload_program=args.payload_program or str(Path(sys.executable).parent / "juno-payload"),
        run_once=args.run_once, poll_s=args.monitor_interval, grace_s=args.kill_grace_s,
        heartbeat_s=args.heartbeat_s, keep_workdir=args.keep_workdir, stage_scheme=args.stage_scheme)
    stop = threading.Event()
    _stop_on_signals(stop)
    return Pilot(settings, WmsClient(args.dispatcher), stop).run()


def _factory(args: argparse.Namespace) -> int:
    from juno_dcs.pilot.backend import LocalProcessBackend
    from juno_dcs.pilot.config import load_config
    from juno_dcs.pilot.factory import Factory, QueueLocks
    from juno_dcs.wms.client import WmsClient

    config = load_config(args.config)
    backend = LocalProcessBackend(config)
    factory = Factory(config, WmsClient(config.dispatcher_url), backend,
                      QueueLocks(config.work_root / "factory"))
    if args.run_once:
        started = factory.run_once()
        logger.info("factory cycle: started %s", started or "nothing")
        return 0
    stop = threading.Event()
    _stop_on_signals(stop)
    logger.info("factory: dispatcher %s, every %.0f s, pilots of %.0f s", config.dispatcher_url, config.sleep_s,
                config.pilot_lifetime_s)
    factory.run(stop)
    backend.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _logging(args.json_logs)
    try:
        return _run(args) if args.command == "run" else _factory(args)
    except JunoDcsError as exc:
        print(f"juno-pilot: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
