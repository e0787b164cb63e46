"""The dashboard's configuration (`juno-dashboard serve|collect --config FILE`): YAML into a frozen typed object.

Each key is described in docs/dashboard.md, section "Configuration"."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from juno_dcs.errors import ConfigError
from juno_dcs.tokens.config import ClientAuth
from juno_dcs.yamlconfig import load_model


class DashboardConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = Field(description="PostgreSQL conninfo/URL of the grid's database: the collector's samples "
                              "are in schema `dashboard`, the probes' results in schema `probes`.")
    transfer_url: str = Field(description="The transfer service (FTS3 REST API): GET /jobs and GET /snapshot.")
    dispatcher_url: str = Field(description="The dispatcher: GET /v1/queues and GET /v1/tasks.")
    token: ClientAuth | None = Field(default=None, description="The dashboard's client of the token issuer, for "
                                     "the transfer service and the dispatcher (docs/security.md).")
    transfer_audience: str = Field(default="127.0.0.1", description="The transfer service's token audience.")
    dispatcher_audience: str = Field(default="juno-wms", description="The dispatcher's token audience.")
    rucio_config: Path | None = Field(default=None, description="rucio.cfg for the dashboard's Rucio client "
                                      "(default: $RUCIO_CONFIG).")
    rucio_account: str | None = Field(default=None, description="The Rucio account (default: rucio.cfg's).")
    topology: Path = Field(description="etc/topology.yaml: sites and their RSEs.")
    policies_dir: Path = Field(description="etc/placement: the share policy that says where each raw block belongs.")
    ingest_metrics_dir: Path | None = Field(default=None, description="The ingestors' metrics files "
                                            "(ingest.yaml `metrics_dir`); none: no ingest panel data.")
    raw_scope: str = Field(default="raw", description="The scope of the daily raw blocks.")
    sample_s: float = Field(default=20.0, ge=1, le=3600, description="Collector: seconds between samples; also "
                            "the width of a sample slot.")
    bucket_s: int = Field(default=60, ge=10, le=86400, description="Width of the throughput and TPC history "
                          "buckets, seconds.")
    lookback_s: int = Field(default=900, ge=60, description="Collector: transfers finished this recently are "
                            "bucketed again every cycle (their buckets are replaced, never added to).")
    history_h: float = Field(default=6.0, gt=0, le=720, description="How far back the charts reach by default.")
    retention_h: float = Field(default=168.0, gt=0, description="Samples older than this are deleted.")
    refresh_s: int = Field(default=15, ge=2, le=3600, description="The page fetches its data this often.")
    cache_s: float = Field(default=10.0, ge=0, description="Panels read live (blocks, productions, probes) are "
                           "cached this long, so many open pages cost no more than one.")
    blocks_refresh_s: float = Field(default=30.0, ge=1, le=86400, description="Collector: the raw blocks' summary "
                                    "(ingest/summary.py) is refreshed this often.")
    blocks_budget: int = Field(default=200, ge=1, le=100000, description="Collector: blocks asked of Rucio per "
                               "refresh at most; more due go on in the next cycle.")
    blocks_recheck_s: float = Field(default=3600.0, ge=60, description="Collector: a settled block whose rules did "
                                    "not change is asked of Rucio again after this long.")
    collect: bool = Field(default=True, description="`serve` runs the collector in a background thread.")
    db_connections: int = Field(default=3, ge=1, le=100, description="The page's requests open at most this many "
                                "database connections at once (the collector holds one more).")
    http_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of each call to another service.")
    chartjs: Path = Field(description="Chart.js 4 UMD build that the page loads from /static (the grid's: "
                          "node_modules/chart.js/dist/chart.umd.js of JUNO_DCS_NODE_MODULES).")


def load_config(path: Path) -> DashboardConfig:
    config = load_model(path, DashboardConfig, "dashboard configuration", ConfigError)
    base = path.resolve().parent  # relative file names are relative to the configuration file
    updates = {k: base / v for k in ("rucio_config", "topology", "policies_dir", "ingest_metrics_dir", "chartjs")
               if (v := getattr(config, k)) is not None and not v.is_absolute()}
    return config.model_copy(update=updates) if updates else config
