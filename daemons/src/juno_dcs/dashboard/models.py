"""The dashboard's JSON: one response model per panel (the OpenAPI description at /openapi.json is made from
these). Times are epoch milliseconds in series (what the charts plot) and ISO 8601 UTC elsewhere."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Point(_Out):
    x: int = Field(description="Epoch milliseconds (start of the slot or bucket).")
    y: float


class Series(_Out):
    key: str = Field(description="What the line is: a channel `IHEP->IN2P3`, a site, a mode, an ingestor.")
    points: list[Point]


class SeriesPanel(_Out):
    unit: str
    since: int = Field(description="Epoch milliseconds: the start of the period shown.")
    step_s: float = Field(description="Width of one slot or bucket, seconds.")
    series: list[Series]


class LinkNow(_Out):
    channel: str
    source_rse: str
    dest_rse: str
    active: int
    queued: int
    finished: int
    failed: int
    success_rate: float | None
    throughput_mb_s: float | None
    active_limit: int | None
    last_decision: str | None


class ThroughputPanel(SeriesPanel):
    links: list[LinkNow] = Field(description="The transfer service's per-link snapshot now.")


class JobsPanel(SeriesPanel):
    now: dict[str, dict[str, int]] = Field(description="Per site now: jobs by state (the dispatcher's queues).")


class TpcCell(_Out):
    ok: bool
    duration_s: float
    throughput_mb_s: float | None
    error: str | None
    at: str


class TpcPanel(SeriesPanel):
    modes: list[str]
    rses: list[str]
    matrix: dict[str, dict[str, dict[str, TpcCell]]] = Field(
        description="mode -> source RSE -> destination RSE -> the newest attempt.")
    failing: list[str] = Field(description="`mode source->destination: error` of every failing cell.")


class RseReplication(_Out):
    rse: str
    site: str
    expected: bool = Field(description="The share policy places this block here.")
    policy_rule: str | None = Field(description="The raw.yaml rule that does (none: not in the policy).")
    files: int = Field(description="Available files of the block at this RSE now.")
    rule_states: list[str] = Field(description="States of the block's Rucio rules that cover this RSE.")
    state: str = Field(description="complete; replicating; stuck (a rule here is STUCK); waiting (no rule yet, "
                       "and the policy's rule waits for another: `after`); missing (no rule, and the policy's rule "
                       "waits for nothing); extra (not in the policy).")


class BlockPanelRow(_Out):
    name: str
    state: str = Field(description="open or closed")
    files: int
    bytes: int
    rses: list[RseReplication]
    checked_at: str | None = Field(default=None, description="When the collector last asked Rucio about this "
                                   "settled block (the blocks' summary); null: asked now.")


class SiteShare(_Out):
    site: str
    expected_files: int = Field(description="Files the policy places at this site's RSEs (summed over blocks).")
    held_files: int = Field(description="Of those, available now.")


class BlocksPanel(_Out):
    scope: str
    blocks: list[BlockPanelRow]
    sites: list[SiteShare]
    error: str | None = Field(default=None, description="Why the panel is empty or stale.")


class StepRow(_Out):
    step: str
    task_id: int
    jobs_total: int
    jobs_by_state: dict[str, int]


class Production(_Out):
    name: str
    owner: str
    steps: list[StepRow]


class ProductionsPanel(_Out):
    productions: list[Production]
    states: list[str] = Field(description="The job states, in the order the chart stacks them.")


class StuckRule(_Out):
    rule_id: str
    did: str
    rse_expression: str
    state: str
    reason: str
    extra: dict[str, object] = Field(default_factory=dict, description="Whatever else the probe recorded.")


class ProbeNow(_Out):
    probe: str
    status: str = Field(description="OK, WARNING, CRITICAL or UNKNOWN (the page shows CRITICAL in red).")
    message: str
    checked_at: str


class ProbesPanel(_Out):
    probes: list[ProbeNow] = Field(description="The newest run of every probe, worst status first.")


class StuckRulesPanel(_Out):
    probe_status: str | None = Field(description="OK, WARNING, CRITICAL or UNKNOWN of the newest run; none: "
                                     "the probe has not run.")
    message: str | None
    checked_at: str | None
    rules: list[StuckRule]


class IngestorNow(_Out):
    instance: str
    state: str
    last_error: str | None
    lag_total: int
    consumed: int
    registered: int
    latency_p50_s: float | None
    updated_at: str | None


class IngestPanel(SeriesPanel):
    instances: list[IngestorNow]


class HealthOut(_Out):
    status: str = Field(description="ok: the page and the API answer.")
    collector: str = Field(description="`not in this process`, `not run yet`, or the age of its last cycle and the "
                           "sources that failed in it.")


class Problem(_Out):
    detail: str
