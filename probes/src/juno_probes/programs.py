"""`juno-probe programs`: every program of the grid runs, and every Rucio daemon's heartbeat is fresh.

Two sources: the supervisor's XML-RPC interface (the state of each program: FATAL, BACKOFF or EXITED is
CRITICAL, a program STOPPED by hand is WARNING) and Rucio's heartbeats (`GET /heartbeats`, root only): a daemon
that runs but has not beaten for `stale_s` is stuck in a cycle or blocked on its database, which the
supervisor cannot see. The supervisor's URL, with its credentials, comes from a file only its owner can read
(`supervisor_url_file` of the probes' config; the grid writes etc/supervisor.url) or from the environment
(JUNO_DCS_SUPERVISOR_URL), never from the command line.

`evaluate` is pure (unit-tested with canned answers); `check` fetches the answers and evaluates them. `juno-dcs
status` uses `evaluate_heartbeats` too, so both name the same daemons.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import xmlrpc.client
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from juno_probes.nagios import Result, Status, worst

SUPERVISOR_URL_ENV = "JUNO_DCS_SUPERVISOR_URL"
DOWN = ("FATAL", "BACKOFF", "EXITED", "UNKNOWN")  # the supervisor's states of a program that should run and does not
STALE_S = 300.0  # five cycles of the slowest daemon (30 s) with room for a long cycle under load


@dataclass(frozen=True)
class Beat:
    """One row of Rucio's heartbeats: a daemon's thread and when it last reported."""

    daemon: str  # `readable`: the daemon's name, e.g. judge-evaluator
    updated_at: dt.datetime  # UTC


def evaluate_processes(processes: Iterable[Mapping[str, Any]]) -> tuple[Status, list[str]]:
    """The supervisor's getAllProcessInfo -> status and one note per program that is not RUNNING."""
    statuses, notes = [Status.OK], []
    for proc in sorted(processes, key=lambda p: str(p.get("name"))):
        state = str(proc.get("statename"))
        if state in ("RUNNING", "STARTING"):
            continue
        statuses.append(Status.CRITICAL if state in DOWN else Status.WARNING)
        description = str(proc.get("description") or "").strip()
        notes.append(f"{proc.get('name')} {state}" + (f" ({description})" if description else ""))
    return worst(*statuses), notes


def stale_daemons(beats: Iterable[Beat], now: dt.datetime, stale_s: float = STALE_S) -> dict[str, float]:
    """Daemon -> seconds since its newest heartbeat, for daemons whose newest heartbeat is older than `stale_s`.
    A daemon restarted under a new pid leaves its old row behind for a while: only the newest counts."""
    newest: dict[str, dt.datetime] = {}
    for beat in beats:
        if beat.daemon not in newest or beat.updated_at > newest[beat.daemon]:
            newest[beat.daemon] = beat.updated_at
    ages = {d: (now - t).total_seconds() for d, t in newest.items()}
    return {d: age for d, age in sorted(ages.items()) if age > stale_s}


def evaluate(processes: Iterable[Mapping[str, Any]], beats: Iterable[Beat], now: dt.datetime,
             stale_s: float = STALE_S) -> Result:
    processes = list(processes)
    status, notes = evaluate_processes(processes)
    stale = stale_daemons(beats, now, stale_s)
    if stale:
        status = worst(status, Status.CRITICAL)
        notes += [f"rucio-{d} silent for {age:.0f} s" for d, age in stale.items()]
    perf = {"programs": str(len(processes)), "down": str(len(notes))}
    if notes:
        return Result(status, "; ".join(notes), perf)
    return Result(Status.OK, f"{len(processes)} programs running, every Rucio daemon beat within {stale_s:.0f} s",
                  perf)


def _time(text: str) -> dt.datetime | None:
    """The REST API's "Fri, 04 Dec 2026 03:53:45 UTC", or ISO 8601; None when it is neither."""
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        pass
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def beats_of(rows: Iterable[Mapping[str, Any]]) -> list[Beat]:
    """Rucio's `GET /heartbeats` rows (or the table's) -> Beats; rows without a name or time are skipped."""
    found = []
    for row in rows:
        name, raw = row.get("readable"), row.get("updated_at")
        when = _time(raw) if isinstance(raw, str) else raw
        if name and isinstance(when, dt.datetime):
            found.append(Beat(str(name), when if when.tzinfo else when.replace(tzinfo=dt.UTC)))
    return found


def read_url_file(path: Path | None) -> str | None:
    """The supervisor's URL from its file (None: no file configured); a file that is missing or readable by
    others is refused with the reason, since it holds the supervisor's password."""
    if path is None:
        return None
    try:
        mode = path.stat().st_mode & 0o077
        text = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the supervisor's URL ({exc.strerror})") from exc
    if mode:
        raise ValueError(f"{path}: holds the supervisor's password but others may read it (chmod 600 it)")
    return text or None


def supervisor_processes(url: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """getAllProcessInfo of the supervisor at `url` (http://user:password@host:port/RPC2)."""

    class _Transport(xmlrpc.client.Transport):
        def make_connection(self, host: Any) -> Any:
            conn = super().make_connection(host)
            conn.timeout = timeout
            return conn

    with xmlrpc.client.ServerProxy(url, transport=_Transport()) as proxy:
        return cast(list[dict[str, Any]], proxy.supervisor.getAllProcessInfo())


def rucio_heartbeats(client: Any) -> list[Beat]:
    """Every heartbeat row, through the Rucio server's REST API (`GET /heartbeats`, root's right)."""
    from rucio.common.constants import HTTPMethod

    response = client._send_request(f"{client.host}/heartbeats", method=HTTPMethod.GET)
    if response.status_code != 200:
        raise RuntimeError(f"GET /heartbeats: HTTP {response.status_code} {response.text[:200]}")
    return beats_of(cast(list[dict[str, Any]], response.json()))


def check(supervisor_url: str | None, client: Any, stale_s: float = STALE_S) -> tuple[Result, dict[str, Any]]:
    """Without a supervisor (a grid on Docker Swarm, whose orchestrator restarts what stops: docs/deploy.md) only
    the heartbeats are checked."""
    try:
        processes = supervisor_processes(supervisor_url) if supervisor_url else []
    except (OSError, xmlrpc.client.Error) as exc:
        return Result(Status.CRITICAL, f"the supervisor does not answer: {exc.__class__.__name__}"), {}
    beats = rucio_heartbeats(client)
    result = evaluate(processes, beats, dt.datetime.now(dt.UTC), stale_s)
    details = {
        "programs": {str(p["name"]): str(p["statename"]) for p in processes},
        "stale_daemons": stale_daemons(beats, dt.datetime.now(dt.UTC), stale_s),
    }
    return result, details
