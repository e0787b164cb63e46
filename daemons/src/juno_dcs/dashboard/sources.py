"""Where the dashboard's data comes from, through the public interfaces only: the transfer service's and the
dispatcher's HTTP APIs, the Rucio client, the share policy, the ingestors' metrics files and the probes' store.

Every failure to reach one of them is a `SourceError` (transient: the next cycle or the next request tries again)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import requests

from juno_dcs.clikit import use_rucio_config
from juno_dcs.dashboard import aggregate
from juno_dcs.dashboard.config import DashboardConfig
from juno_dcs.dashboard.models import BlockPanelRow
from juno_dcs.errors import JunoDcsError, Unavailable
from juno_dcs.ingest.status import BlockView
from juno_dcs.placement.loader import Policies
from juno_dcs.tokens.config import ClientAuth
from juno_dcs.tokens.fetch import BearerAuth, TokenSource
from juno_dcs.topology import Topology

DONE_JOB_STATES = "FINISHED,FINISHEDDIRTY,FAILED,CANCELED"
OPEN_JOB_STATES = "ACTIVE,ARCHIVING"
FILE_FIELDS = "file_state,source_se,dest_se,finish_time,transferred"
SE_MAP_TTL_S = 600.0


class SourceError(Unavailable):
    """A service the dashboard reads did not answer, or answered wrongly (the dashboard answers 503)."""


def get_json(url: str, timeout: float, params: Mapping[str, Any] | None = None,
             auth: BearerAuth | None = None) -> Any:
    try:
        reply = requests.get(url, params=params, timeout=timeout, headers=auth.headers() if auth else None)
        if reply.status_code not in (200, 207):
            raise SourceError(f"GET {reply.url}: HTTP {reply.status_code}: {reply.text[:300]}")
        return reply.json()
    except (requests.RequestException, ValueError) as exc:
        raise SourceError(f"GET {url}: {exc.__class__.__name__}: {exc}") from exc
    except JunoDcsError as exc:  # no token from the issuer
        raise SourceError(f"GET {url}: {exc}") from exc


def bearer_auth(config: DashboardConfig, audience: str) -> BearerAuth:
    """The dashboard's token for one service: one token source per process, shared by every caller."""
    return BearerAuth(_token_source(config.token), audience)


_SOURCES: dict[ClientAuth, TokenSource] = {}
_SOURCES_LOCK = threading.Lock()


def _token_source(auth: ClientAuth | None) -> TokenSource | None:
    if auth is None:
        return None
    with _SOURCES_LOCK:
        if auth not in _SOURCES:
            _SOURCES[auth] = auth.source()
        return _SOURCES[auth]


class TransferApi:
    """The transfer service (FTS3 REST): GET /jobs, GET /jobs/ID,...?files=, GET /snapshot (docs/transfers.md)."""

    def __init__(self, url: str, timeout: float, auth: BearerAuth | None = None) -> None:
        self.url, self.timeout, self.auth = url.rstrip("/"), timeout, auth

    def snapshot(self, window_s: float) -> list[dict[str, Any]]:
        return list(get_json(f"{self.url}/snapshot", self.timeout, {"window": window_s}, self.auth).get("links") or [])

    def recent_files(self, lookback_s: float) -> list[aggregate.DoneFile]:
        """The finished and failed files of the jobs that finished within `lookback_s` or are still running."""
        now = time.time()
        done = get_json(f"{self.url}/jobs", self.timeout,
                        {"state_in": DONE_JOB_STATES, "time_window": 24, "limit": 10000}, self.auth)
        running = get_json(f"{self.url}/jobs", self.timeout,
                           {"state_in": OPEN_JOB_STATES, "time_window": 24, "limit": 10000}, self.auth)
        ids = [str(j["job_id"]) for j in running]
        for job in done:
            finished = aggregate.parse_time(job.get("job_finished"))
            if finished is not None and finished.timestamp() >= now - lookback_s:
                ids.append(str(job["job_id"]))
        jobs: list[dict[str, Any]] = []
        for i in range(0, len(ids), 50):
            answer = get_json(f"{self.url}/jobs/{','.join(ids[i:i + 50])}", self.timeout, {"files": FILE_FIELDS},
                              self.auth)
            jobs += answer if isinstance(answer, list) else [answer]
        return aggregate.done_files(j for j in jobs if j.get("http_status") == "200 Ok")


class DispatcherApi:
    """The dispatcher: GET /v1/queues and GET /v1/tasks (docs/wms.md)."""

    def __init__(self, url: str, timeout: float, auth: BearerAuth | None = None) -> None:
        self.url, self.timeout, self.auth = url.rstrip("/"), timeout, auth

    def queues(self) -> list[dict[str, Any]]:
        return list(get_json(f"{self.url}/v1/queues", self.timeout, None, self.auth))

    def tasks(self) -> list[dict[str, Any]]:
        return list(get_json(f"{self.url}/v1/tasks", self.timeout, None, self.auth))


class RucioSource:
    """The Rucio client (made on first use, one call at a time: the client is not made for threads)."""

    def __init__(self, config: DashboardConfig, topology: Topology, policies: Policies) -> None:
        self.config, self.topology, self.policies = config, topology, policies
        self._client: Any = None
        self._lock = threading.Lock()
        self._se_rses: dict[str, str] = {}
        self._se_read_at = 0.0
        # the panel's row of each settled block, by the summary's check time: the topology and the policy are
        # this process's for its life, so a row changes only when the collector checks the block again
        self._panel_rows: dict[str, tuple[datetime, BlockPanelRow]] = {}

    @contextmanager
    def client(self) -> Iterator[Any]:
        with self._lock:
            if self._client is None:
                try:
                    if self.config.rucio_config is not None:
                        use_rucio_config(self.config.rucio_config)  # a missing file: the source is not there
                    from rucio.client import Client

                    self._client = Client(account=self.config.rucio_account) if self.config.rucio_account \
                        else Client()
                except Exception as exc:  # Rucio raises many types for a server that is not there
                    raise SourceError(f"Rucio: {exc.__class__.__name__}: {exc}") from exc
            try:
                yield self._client
            except SourceError:
                raise
            except Exception as exc:
                raise SourceError(f"Rucio: {exc.__class__.__name__}: {' '.join(str(exc).split())[:300]}") from exc

    def se_rses(self) -> dict[str, str]:
        """FTS's storage element name (scheme://host:port) -> RSE, from the RSEs' protocols in Rucio (read again
        every SE_MAP_TTL_S)."""
        from juno_dcs.transfer.models import storage_element

        if self._se_rses and time.monotonic() - self._se_read_at < SE_MAP_TTL_S:
            return self._se_rses
        out: dict[str, str] = {}
        with self.client() as client:
            for rse in self.topology.rses:
                for p in client.get_protocols(rse):
                    port = f":{p['port']}" if p.get("port") else ""
                    out[storage_element(f"{p['scheme']}://{p['hostname']}{port}/")] = rse
        self._se_rses, self._se_read_at = out, time.monotonic()
        return out

    def _panel_row(self, view: BlockView, checked_at: datetime | None) -> BlockPanelRow:
        from juno_dcs.placement.planner import PlanError, plan
        from juno_dcs.placement.rse_expr import evaluate

        try:
            planned = plan(f"{self.config.raw_scope}:{view.name}", self.policies, self.topology)
        except PlanError:
            planned = []
        expected = aggregate.expected_rses((aggregate.Placement(p.policy_rule, p.after),
                                            evaluate(p.rse_expression, self.topology)) for p in planned)
        checked = checked_at.astimezone(UTC).isoformat(timespec="seconds") if checked_at else None
        return aggregate.compare_block(view, expected, self.topology, checked)

    def storage_elements(self) -> dict[str, str]:
        """FTS's storage element name -> site."""
        return {se: self.topology.rses[rse].site for se, rse in self.se_rses().items()}

    def blocks(self) -> list[BlockPanelRow]:
        """Every raw block with, per RSE, what the share policy wants there and what is there now: settled blocks
        from the blocks' summary that the collector keeps, the others asked of Rucio now (ingest/summary.py)."""
        from juno_dcs.ingest.summary import read_status, summary_connection

        rows = []
        conn = summary_connection(self.config.database_url)
        try:
            with self.client() as client:
                found = read_status(client, conn, self.topology, scope=self.config.raw_scope)
        finally:
            if conn is not None:
                conn.close()
        kept: dict[str, tuple[datetime, BlockPanelRow]] = {}
        for row in found:
            hit = self._panel_rows.get(row.view.name)
            if row.checked_at is not None and hit is not None and hit[0] == row.checked_at:
                panel = hit[1]
            else:
                panel = self._panel_row(row.view, row.checked_at)
            if row.checked_at is not None:
                kept[row.view.name] = (row.checked_at, panel)
            rows.append(panel)
        self._panel_rows = kept  # blocks gone, or no longer settled, leave the memo
        return rows
