"""`juno-probe NAME [options]`: run one probe, print its Nagios line, exit with its status."""

from __future__ import annotations

import argparse
import configparser
import os
import sys

from juno_probes import rucio_server
from juno_probes.nagios import Result, Status


def _rucio_client_settings(config: str | None) -> tuple[str, str, str]:
    path = config or os.environ.get("RUCIO_CONFIG")
    if not path:
        raise ValueError("no Rucio client configuration: pass --rucio-config or eval \"$(juno-dcs env)\" first")
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path):
        raise ValueError(f"{path}: cannot read the Rucio client configuration")
    try:
        section = parser["client"]
        return section["rucio_host"], section["account"], section["password"]
    except KeyError as exc:
        raise ValueError(f"{path}: [client] lacks {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="juno-probe", description=__doc__)
    sub = parser.add_subparsers(dest="probe", required=True)
    rucio = sub.add_parser("rucio", help="the Rucio server answers and accepts a login")
    rucio.add_argument("--rucio-config", help="Rucio client config (default $RUCIO_CONFIG)")
    rucio.add_argument("--warning", type=float, default=1.0, help="ping seconds for WARNING")
    rucio.add_argument("--critical", type=float, default=5.0, help="ping seconds for CRITICAL")
    args = parser.parse_args(argv)
    try:
        url, account, password = _rucio_client_settings(args.rucio_config)
        result = rucio_server.check(url, account, password, args.warning, args.critical)
    except ValueError as exc:
        result = Result(Status.UNKNOWN, str(exc))
    print(result.line(args.probe))
    return int(result.status)


if __name__ == "__main__":
    sys.exit(main())
