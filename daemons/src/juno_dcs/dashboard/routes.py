"""The dashboard's HTTP API: the page, Chart.js, and one JSON endpoint per panel (docs/dashboard.md).

Bad query parameters are refused with 400 or 422 and the reason; a service the panel reads that does not answer
gives 503 with the reason (the page shows it in the panel and tries again at the next refresh). Errors of the
project's tree (juno_dcs.errors: ConfigError 400, NotFound 404, SourceError 503, ...) become {"detail": ...} with
their `http_status` in one handler, the body FastAPI gives its own HTTPExceptions."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import psycopg
from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from juno_dcs.dashboard import aggregate, db, page
from juno_dcs.dashboard.collector import read_metrics
from juno_dcs.dashboard.models import (
    BlocksPanel,
    HealthOut,
    IngestPanel,
    JobsPanel,
    LinkNow,
    ProbeNow,
    ProbesPanel,
    Problem,
    ProductionsPanel,
    StuckRulesPanel,
    ThroughputPanel,
    TpcPanel,
)
from juno_dcs.dashboard.service import Context
from juno_dcs.dashboard.sources import SourceError, TransferApi, bearer_auth
from juno_dcs.errors import ConfigError, JunoDcsError, NotFound

if TYPE_CHECKING:
    from juno_probes.store import StoredRun, TpcAttempt

T = TypeVar("T")
Hours = Annotated[float | None, Query(gt=0, le=720, description="How far back, hours (default: history_h).")]
Mode = Literal["pull", "push", "streamed"]
ERRORS: dict[int | str, dict[str, object]] = {400: {"model": Problem}, 422: {"description": "Bad parameter"},
                                              503: {"model": Problem}}


def create_app(ctx: Context) -> FastAPI:
    config = ctx.config
    app = FastAPI(title="JUNO grid dashboard", version="1",
                  description="One page for the operators, and every panel's data as JSON. See docs/dashboard.md.")

    @app.exception_handler(JunoDcsError)
    async def _tree(_: Request, exc: JunoDcsError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    def since_of(hours: float | None) -> float:
        return time.time() - 3600 * (hours if hours is not None else config.history_h)

    def samples(series: str, since: float, keys: list[str] | None = None) -> list[aggregate.Sample]:
        with ctx.db_slots:  # at most config.db_connections at once, whatever the number of requests
            try:
                conn = db.connect(config.database_url)
            except psycopg.Error as exc:
                raise SourceError(f"the dashboard's database: {exc}") from exc
            try:
                return db.read(conn, series, since, keys)
            except psycopg.errors.UndefinedTable:
                return []  # the collector has not run yet
            finally:
                conn.close()

    def live(key: str, compute: Callable[[], T]) -> T:
        return ctx.cache.get(key, compute)  # a SourceError is answered with 503 by the handler

    def known(kind: str, value: str | None, allowed: list[str]) -> list[str] | None:
        if value is None:
            return None
        wanted = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [v for v in wanted if v not in allowed]
        if unknown or not wanted:
            raise ConfigError(f"unknown {kind} {', '.join(unknown) or repr(value)}; known: {', '.join(allowed)}")
        return wanted

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page.html(refresh_s=config.refresh_s)

    @app.get("/static/chart.umd.js", include_in_schema=False)
    def chartjs() -> FileResponse:
        if not config.chartjs.is_file():
            raise NotFound(f"Chart.js is not at {config.chartjs} (`juno-dcs install-assets node`)")
        return FileResponse(config.chartjs, media_type="text/javascript")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/dashboard.js", include_in_schema=False)
    def script() -> Response:
        return Response(page.SCRIPT, media_type="text/javascript")

    @app.get("/api/health")
    def health() -> HealthOut:
        """The dashboard answers; how its collector is doing."""
        c = ctx.collector
        if c is None:
            return HealthOut(status="ok", collector="not in this process")
        if c.last is None or c.last_at is None:
            return HealthOut(status="ok", collector="not run yet")
        failed = "; ".join(f"{k}: {v}" for k, v in c.last.errors.items())
        return HealthOut(status="ok", collector=f"last cycle {time.time() - c.last_at:.0f} s ago"
                         + (f", failed: {failed}" if failed else ", all sources read"))

    @app.get("/api/throughput", responses=ERRORS)
    def throughput(hours: Hours = None, channel: Annotated[str | None, Query(
            description="Comma-separated channels `SRC->DST` (sites); default: all.")] = None) -> ThroughputPanel:
        """MB/s per channel (source site -> destination site) per bucket, from the finished transfers; and the
        transfer service's per-link snapshot now."""
        since = since_of(hours)
        rows = samples("throughput", since)
        channels = sorted({r.key for r in rows})
        wanted = known("channel", channel, channels) if channel else None
        rows = [r for r in rows if wanted is None or r.key in wanted]
        links = live("links", lambda: _links(ctx))
        return ThroughputPanel(unit="MB/s", since=int(since * 1000), step_s=config.bucket_s, links=links,
                               series=aggregate.series(rows, config.bucket_s, time.time(), fill=0.0))

    @app.get("/api/jobs", responses=ERRORS)
    def jobs(hours: Hours = None, site: Annotated[str | None, Query(
            description="Comma-separated sites; default: all.")] = None) -> JobsPanel:
        """Running jobs (starting, running, holding) per site over time, sampled by the collector; jobs by state
        per site now."""
        wanted = known("site", site, sorted(ctx.topology.sites))
        since = since_of(hours)
        now = live("queues", lambda: aggregate.running_per_site(ctx.dispatcher.queues()))
        return JobsPanel(unit="jobs", since=int(since * 1000), step_s=config.sample_s,
                         series=aggregate.series(samples("running", since, wanted), config.sample_s, time.time()),
                         now={s: v for s, v in now.items() if wanted is None or s in wanted})

    @app.get("/api/tpc", responses=ERRORS)
    def tpc(hours: Hours = None, mode: Annotated[Mode | None, Query(
            description="Only this mode: pull, push or streamed.")] = None) -> TpcPanel:
        """The HTTP-TPC probe's matrix (newest attempt per source, destination and mode) and the percentage of
        successful attempts per mode over time."""
        since = since_of(hours)

        def read() -> tuple[list[TpcAttempt], list[TpcAttempt]]:
            from juno_probes import store

            empty: tuple[list[TpcAttempt], list[TpcAttempt]] = ([], [])
            return _probe_store(ctx, lambda c: (
                list(store.tpc_matrix(c)), list(store.tpc_history(c, datetime.fromtimestamp(since, UTC)))), empty)

        latest, history = live(f"tpc:{int(since) // 60}", read)
        latest = [a for a in latest if mode is None or a.mode == mode]
        history = [a for a in history if mode is None or a.mode == mode]
        matrix, failing = aggregate.tpc_matrix(latest)
        rses = sorted({a.source for a in latest} | {a.destination for a in latest})
        return TpcPanel(unit="% ok", since=int(since * 1000), step_s=config.bucket_s, modes=sorted(matrix),
                        rses=rses, matrix=matrix, failing=failing,
                        series=aggregate.series(aggregate.tpc_success(history, config.bucket_s), config.bucket_s,
                                                time.time()))

    @app.get("/api/blocks", responses=ERRORS)
    def blocks(day: Annotated[str | None, Query(pattern=r"^\d{8}$", description="Only the blocks of this day "
                                                "(YYYYMMDD).")] = None) -> BlocksPanel:
        """Every daily raw block and, per RSE, whether the share policy places it there, how many of its files
        are there now, and the states of the rules covering that RSE."""
        rows = live("blocks", ctx.rucio.blocks)
        rows = [b for b in rows if day is None or f".{day}." in b.name]
        return BlocksPanel(scope=config.raw_scope, blocks=rows, sites=aggregate.site_shares(rows))

    @app.get("/api/productions", responses=ERRORS)
    def productions() -> ProductionsPanel:
        """Productions by step: the dispatcher's jobs by state for each step's task."""
        return ProductionsPanel(productions=live("productions", lambda: aggregate.productions(ctx.dispatcher.tasks())),
                                states=list(aggregate.JOB_STATES))

    @app.get("/api/stuck-rules", responses=ERRORS)
    def stuck_rules() -> StuckRulesPanel:
        """The newest `juno-probe stuck-rules` run: its status and every rule it found, with the reason."""
        def read() -> StuckRulesPanel:
            from juno_probes import store

            none: list[StoredRun] = []
            runs = {r.probe: r for r in _probe_store(ctx, store.latest_runs, none)}
            run = runs.get("stuck-rules")
            if run is None:
                return StuckRulesPanel(probe_status=None, message=None, checked_at=None, rules=[])
            return StuckRulesPanel(probe_status=run.status.name, message=run.message,
                                   checked_at=run.started_at.astimezone(UTC).isoformat(timespec="seconds"),
                                   rules=aggregate.stuck_rules(run.details))

        return live("stuck-rules", read)

    @app.get("/api/probes", responses=ERRORS)
    def probes() -> ProbesPanel:
        """The alarms: the newest run of every probe, CRITICAL first (a program the supervisor gave up on, a
        silent Rucio daemon, a stuck rule ... each has its probe)."""
        def read() -> ProbesPanel:
            from juno_probes import store

            none: list[StoredRun] = []
            order = {"CRITICAL": 0, "WARNING": 1, "UNKNOWN": 2, "OK": 3}
            runs = sorted(_probe_store(ctx, store.latest_runs, none), key=lambda r: (order[r.status.name], r.probe))
            return ProbesPanel(probes=[
                ProbeNow(probe=r.probe, status=r.status.name, message=r.message,
                         checked_at=r.started_at.astimezone(UTC).isoformat(timespec="seconds")) for r in runs])

        return live("probes", read)

    @app.get("/api/ingest", responses=ERRORS)
    def ingest(hours: Hours = None) -> IngestPanel:
        """The ingestors' consumer lag over time (sampled by the collector) and each instance's metrics now."""
        since = since_of(hours)
        return IngestPanel(unit="messages", since=int(since * 1000), step_s=config.sample_s,
                           series=aggregate.series(samples("ingest_lag", since), config.sample_s, time.time()),
                           instances=aggregate.ingestors(read_metrics(config.ingest_metrics_dir)))

    return app


def _links(ctx: Context) -> list[LinkNow]:
    sites, rses = ctx.rucio.storage_elements(), ctx.rucio.se_rses()
    out = []
    transfers = TransferApi(ctx.config.transfer_url, ctx.config.http_timeout_s,
                            bearer_auth(ctx.config, ctx.config.transfer_audience))
    for link in transfers.snapshot(300):
        src, dst = str(link["source_se"]), str(link["dest_se"])
        decision = link.get("last_decision")
        out.append(LinkNow(
            channel=aggregate.channel(src, dst, sites), source_rse=rses.get(src, src), dest_rse=rses.get(dst, dst),
            active=int(link.get("active") or 0), queued=int(link.get("queued") or 0),
            finished=int(link.get("finished") or 0), failed=int(link.get("failed") or 0),
            success_rate=link.get("success_rate"), throughput_mb_s=link.get("throughput_mb_s"),
            active_limit=link.get("active_limit"),
            last_decision=str(decision.get("reason")) if isinstance(decision, dict) else None))
    return out


def _probe_store(ctx: Context, read: Callable[[psycopg.Connection[psycopg.rows.TupleRow]], T], empty: T) -> T:
    """What the probes recorded (juno_probes.store); `empty` while there is no schema `probes` yet."""
    from juno_probes import store

    with ctx.db_slots:
        try:
            conn = store.connect(ctx.config.database_url)
        except psycopg.Error as exc:
            raise SourceError(f"the monitoring database: {exc}") from exc
        try:
            return read(conn)
        except psycopg.errors.UndefinedTable:
            return empty
        finally:
            conn.close()
