"""Running one probe: its arguments (parsed by juno_probes.options) and settings in, an `Outcome` out; storing it.

Used by the command line (juno_probes.cli) and the scheduler (juno_probes.schedule); it imports neither.
"""

from __future__ import annotations

import configparser
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from juno_dcs.clikit import use_rucio_config
from juno_dcs.tokens.fetch import BearerAuth
from juno_dcs.tokens.storage import STORAGE_AUDIENCE, write_scope
from juno_probes import programs, rucio_server, services, store, stuck, tpc
from juno_probes.config import ProbesConfig
from juno_probes.nagios import Result, Status
from juno_probes.options import ProbeArgs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    result: Result
    details: dict[str, Any] = field(default_factory=dict)
    attempts: list[store.TpcAttempt] = field(default_factory=list)


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


def _rucio_client(path: str | None) -> Any:
    """A Rucio client for the config file `path` (else $RUCIO_CONFIG), which must exist."""
    _rucio_client_settings(path)  # a clear error when there is no usable file
    from rucio.client import Client
    from rucio.common.config import clean_cached_config

    if path and os.environ.get("RUCIO_CONFIG") != path:
        use_rucio_config(path)
        clean_cached_config()  # Rucio reads its config once per process
    return Client()


def _need(value: Any, what: str) -> Any:
    if value in (None, "", {}):
        raise ValueError(f"no {what} (give the option or --config)")
    return value


def _bearer(config: ProbesConfig, audience: str) -> BearerAuth | None:
    """The probes' token for a service, when the configuration names their client of the token issuer."""
    return BearerAuth(config.token.source(), audience) if config.token is not None else None


def _storage_token(config: ProbesConfig) -> str | None:
    """The probes' token for the storage elements: read, create and modify their test area only."""
    if config.token is None:
        return None
    return config.token.source().get(STORAGE_AUDIENCE, write_scope("/" + tpc.TEST_DIR)).value


def run_probe(args: ProbeArgs, config: ProbesConfig) -> Outcome:
    """Run the probe that `args` names; ValueError for a missing setting."""
    name = args.probe
    rucio_cfg = getattr(args, "rucio_config", None) or (str(config.rucio_config) if config.rucio_config else None)
    if name == "rucio":
        url, account, password = _rucio_client_settings(rucio_cfg)
        return Outcome(rucio_server.check(url, account, password, args.warning, args.critical))
    if name == "tpc":
        result, attempts = tpc.check(_rucio_client(rucio_cfg), args.rses, args.modes, args.timeout, args.parallel,
                                     args.warning, args.critical, args.size, token=_storage_token(config))
        return Outcome(result, dict(tpc.details(attempts)), attempts)
    if name == "stuck-rules":
        result, rules = stuck.check(_rucio_client(rucio_cfg), args.fts_url or config.fts_url, args.older_than,
                                    args.warning, args.critical, args.max_rules, args.unsubmitted_after,
                                    fts_auth=_bearer(config, config.fts_audience))
        return Outcome(result, {"older_than_s": args.older_than, "rules": rules})
    if name == "ingest-lag":
        limits = services.IngestThresholds(args.lag_warning, args.lag_critical, args.latency_warning,
                                           args.latency_critical, args.stale)
        return Outcome(services.check_ingest(_need(args.metrics_dir or config.ingest_metrics_dir,
                                                   "ingestor metrics directory (--metrics-dir)"), limits))
    if name == "transfer-queues":
        limits_q = services.QueueThresholds(args.failure_warning, args.failure_critical, 5, args.queued_warning,
                                            args.queued_critical, args.window)
        return Outcome(services.check_queues(_need(args.fts_url or config.fts_url, "transfer service (--fts-url)"),
                                             limits_q, auth=_bearer(config, config.fts_audience)))
    if name == "conditions":
        squids = dict(args.squid) or config.squids
        service = args.conditions_url or config.conditions_url
        _need(service or squids, "conditions service or Squid (--conditions-url, --squid)")
        return Outcome(services.check_conditions(service, squids, args.path, args.warning, args.critical))
    if name == "dispatcher":
        wms = args.dispatcher_url or config.dispatcher_url or os.environ.get("JUNO_WMS_URL")
        return Outcome(services.check_dispatcher(_need(wms, "dispatcher (--dispatcher-url)"), args.min_jobs,
                                                 auth=_bearer(config, config.dispatcher_audience)))
    if name == "programs":
        found = os.environ.get(programs.SUPERVISOR_URL_ENV) or programs.read_url_file(config.supervisor_url_file)
        supervisor = None if found is None and config.orchestrated else str(_need(
            found, f"supervisor (supervisor_url_file in --config, or ${programs.SUPERVISOR_URL_ENV})"))
        result, details = programs.check(supervisor, _rucio_client(rucio_cfg), args.stale)
        return Outcome(result, details)
    raise ValueError(f"unknown probe {name}")


def execute(args: ProbeArgs, config: ProbesConfig) -> Outcome:
    """`run_probe`, with any failure of the probe itself turned into UNKNOWN with the reason."""
    if config.ca_file is not None:  # the grid's HTTPS services (the transfer service) are signed by its CA
        os.environ["REQUESTS_CA_BUNDLE"] = str(config.ca_file)
    try:
        return run_probe(args, config)
    except ValueError as exc:
        return Outcome(Result(Status.UNKNOWN, str(exc)))
    except Exception as exc:  # a probe that breaks is UNKNOWN, as Nagios expects, never a traceback
        logger.exception("probe %s raised", args.probe)
        return Outcome(Result(Status.UNKNOWN, f"the probe raised {exc.__class__.__name__}: {exc}"))


def save(dsn: str, probe: str, outcome: Outcome, started_at: datetime, duration_s: float) -> int:
    with store.connect(dsn) as conn:
        store.check_schema(conn)
        run_id = store.record_run(conn, probe, outcome.result, started_at, duration_s, outcome.details)
        store.record_tpc(conn, run_id, outcome.attempts)
        return run_id
