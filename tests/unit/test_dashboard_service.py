"""The dashboard's API through FastAPI's TestClient with fake sources: the page, Chart.js, every panel's endpoint
and OpenAPI; bad query parameters refused with the reason; a source that does not answer gives 503; bad
configuration files and arguments refused with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient

from juno_dcs.dashboard.__main__ import main
from juno_dcs.dashboard.config import DashboardConfig, load_config
from juno_dcs.dashboard.models import BlockPanelRow, RseReplication
from juno_dcs.dashboard.routes import create_app
from juno_dcs.dashboard.service import context
from juno_dcs.dashboard.sources import DispatcherApi, RucioSource, SourceError
from juno_dcs.errors import ConfigError
from juno_dcs.grid.assets import chartjs
from juno_dcs.packaged import data_file
from juno_dcs.settings import GridSettings

CHARTJS = chartjs(GridSettings().node_modules)  # the checkout's node_modules after `make setup`

BASE: dict[str, Any] = {
    "database_url": "postgresql://nobody:x@127.0.0.1:1/none",  # nothing listens: the database is "down"
    "transfer_url": "http://127.0.0.1:1", "dispatcher_url": "http://127.0.0.1:1",
    "topology": str(data_file("topology.yaml")), "policies_dir": str(data_file("placement")),
    "chartjs": str(CHARTJS),
}
PATHS = ("/api/throughput", "/api/jobs", "/api/tpc", "/api/blocks", "/api/productions", "/api/stuck-rules",
         "/api/ingest")


class FakeDispatcher(DispatcherApi):
    def __init__(self, tasks: list[dict[str, Any]] | None) -> None:
        super().__init__("http://127.0.0.1:1", 1.0)
        self._tasks = tasks

    def tasks(self) -> list[dict[str, Any]]:
        if self._tasks is None:
            raise SourceError("GET http://127.0.0.1:1/v1/tasks: ConnectionError: refused")
        return self._tasks

    def queues(self) -> list[dict[str, Any]]:
        return [{"queue": "IHEP", "site": "IHEP", "jobs": {"running": 1}}]


class FakeRucio(RucioSource):
    def blocks(self) -> list[BlockPanelRow]:
        rse = RseReplication(rse="IHEP_DISK", site="IHEP", expected=True, policy_rule="ihep-disk", files=3,
                             rule_states=["OK"], state="complete")
        return [BlockPanelRow(name=f"block.{day}.physics", state="closed", files=3, bytes=30, rses=[rse])
                for day in ("20260101", "20260102")]


def client(tasks: list[dict[str, Any]] | None = None, **overrides: Any) -> TestClient:
    ctx = context(DashboardConfig.model_validate({**BASE, **overrides}))
    ctx.rucio = FakeRucio(ctx.config, ctx.topology, ctx.policies)
    ctx.dispatcher = FakeDispatcher(tasks)
    return TestClient(create_app(ctx))


def test_the_page_loads_chartjs_and_its_script_from_the_dashboard() -> None:
    c = client(refresh_s=7)
    page = c.get("/")
    assert page.status_code == 200
    assert '<script src="/static/chart.umd.js">' in page.text
    assert "window.JUNO_REFRESH_S = 7;" in page.text
    assert "http" not in page.text.split("<main>")[1]  # nothing from another origin
    script = c.get("/static/dashboard.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert all(p in script.text for p in ('"throughput"', '"stuck-rules"', "window.junoCharts"))
    if CHARTJS.is_file():
        chart = c.get("/static/chart.umd.js")
        assert chart.status_code == 200
        assert "Chart.js v4" in chart.text[:300]


def test_a_missing_chartjs_is_named() -> None:
    reply = client(chartjs="/nonexistent/chart.umd.js").get("/static/chart.umd.js")
    assert reply.status_code == 404
    assert "/nonexistent/chart.umd.js" in reply.json()["detail"]


def test_every_panel_is_in_the_openapi_description() -> None:
    spec = client().get("/openapi.json").json()
    assert set(PATHS) <= set(spec["paths"])
    assert "MB/s" in str(spec["paths"]["/api/throughput"]) or "channel" in str(spec["paths"]["/api/throughput"])


@pytest.mark.parametrize(("url", "status", "words"), [
    ("/api/jobs?site=NOWHERE", 400, ["unknown site NOWHERE", "IHEP"]),
    ("/api/jobs?site=", 400, ["unknown site"]),
    ("/api/tpc?mode=sideways", 422, ["pull", "streamed"]),
    ("/api/throughput?hours=0", 422, ["greater than 0"]),
    ("/api/ingest?hours=1000", 422, ["less than or equal to 720"]),
    ("/api/jobs?hours=soon", 422, ["valid number"]),
    ("/api/blocks?day=2026-01-01", 422, ["pattern"]),
])
def test_bad_query_parameters_are_refused_with_the_reason(url: str, status: int, words: list[str]) -> None:
    reply = client().get(url)
    assert reply.status_code == status, reply.text
    assert all(w in reply.text for w in words), reply.text


def test_blocks_panel_with_a_day_filter_and_site_shares() -> None:
    c = client()
    body = c.get("/api/blocks").json()
    assert [b["name"] for b in body["blocks"]] == ["block.20260101.physics", "block.20260102.physics"]
    assert body["sites"] == [{"site": "IHEP", "expected_files": 6, "held_files": 6}]
    assert [b["name"] for b in c.get("/api/blocks?day=20260102").json()["blocks"]] == ["block.20260102.physics"]


def test_productions_panel_groups_the_dispatchers_tasks() -> None:
    tasks = [{"task_id": 1, "name": "p.detsim", "kind": "production", "owner": "production",
              "jobs_by_state": {"finished": 3}},
             {"task_id": 2, "name": "p.elecsim", "kind": "production", "owner": "production",
              "jobs_by_state": {"running": 3}}]
    body = client(tasks).get("/api/productions").json()
    assert [(s["step"], s["jobs_by_state"]) for s in body["productions"][0]["steps"]] == [
        ("detsim", {"finished": 3}), ("elecsim", {"running": 3})]
    assert body["states"][0] == "defined"


def test_a_source_that_does_not_answer_gives_503_with_the_reason() -> None:
    reply = client(None).get("/api/productions")
    assert reply.status_code == 503
    assert "v1/tasks" in reply.json()["detail"]
    reply = client().get("/api/ingest")
    assert reply.status_code == 503
    assert "the dashboard's database" in reply.json()["detail"]


def test_health_without_a_collector() -> None:
    assert client().get("/api/health").json() == {"status": "ok", "collector": "not in this process"}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "dashboard.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_config_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, {**BASE, "ingest_metrics_dir": "run/ingest", "rucio_config": "r.cfg"}))
    assert config.ingest_metrics_dir == tmp_path / "run" / "ingest"
    assert config.rucio_config == tmp_path / "r.cfg"


@pytest.mark.parametrize(("change", "words"), [
    ({"colour": "blue"}, ["colour", "Extra inputs"]),
    ({"sample_s": 0}, ["sample_s", "greater than or equal to 1"]),
    ({"refresh_s": "often"}, ["refresh_s", "valid integer"]),
    ({"database_url": None}, ["database_url"]),
])
def test_bad_config_is_refused_with_file_field_and_reason(tmp_path: Path, change: dict[str, Any],
                                                          words: list[str]) -> None:
    path = _write(tmp_path, {**BASE, **change})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert all(w in str(err.value) for w in [str(path), *words]), err.value


def test_cli_errors_name_the_problem(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["collect", "--config", str(tmp_path / "missing.yaml"), "--run-once"])
    assert missing.exit_code == 2
    assert "missing.yaml" in missing.output
    good = _write(tmp_path, BASE)
    short = runner.invoke(main, ["--json-logs", "collect", "--config", str(good), "--run-once", "--sleep-time", "0.1"])
    assert short.exit_code == 2  # the old spelling of --log-json is still taken
    assert "--sleep-time must be at least 1 second" in short.output
    bad_topology = _write(tmp_path, {**BASE, "topology": str(tmp_path / "none.yaml")})
    topology = runner.invoke(main, ["collect", "--config", str(bad_topology), "--run-once", "--log-json"])
    assert topology.exit_code == 2
    assert "none.yaml" in topology.output


def test_the_blocks_panel_computes_a_settled_block_once_per_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """A settled block's row is kept by its check time; a live block, a new check or a gone block is not."""
    from contextlib import contextmanager
    from datetime import UTC, datetime

    from juno_dcs.ingest import summary
    from juno_dcs.ingest.status import BlockView, SiteView, StatusRow

    ctx = context(DashboardConfig.model_validate(BASE))
    source = ctx.rucio
    then, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)

    def view(name: str) -> BlockView:
        return BlockView(name=name, state="closed", files=3, bytes=3,
                         sites={"IHEP": SiteView(replicas=3, rses={"IHEP_DISK": 3})})

    found = [StatusRow(view("block.20200101.physics"), then), StatusRow(view("block.20200102.physics"), None)]
    computed: list[str] = []
    real = source._panel_row

    def counting(v: BlockView, at: datetime | None) -> BlockPanelRow:
        computed.append(v.name)
        return real(v, at)

    @contextmanager
    def no_client() -> Any:
        yield None

    monkeypatch.setattr(summary, "summary_connection", lambda url: None)
    monkeypatch.setattr(summary, "read_status", lambda client, conn, topology, scope: list(found))
    monkeypatch.setattr(source, "_panel_row", counting)
    monkeypatch.setattr(source, "client", no_client)
    first = source.blocks()
    assert computed == ["block.20200101.physics", "block.20200102.physics"]
    assert "IHEP_DISK" in {r.rse for r in first[0].rses}
    assert source.blocks() == first
    assert computed[2:] == ["block.20200102.physics"], "the settled block's row is kept, the live one asked again"
    found[0] = StatusRow(view("block.20200101.physics"), later)
    source.blocks()
    assert computed[3:] == ["block.20200101.physics", "block.20200102.physics"], "checked again: computed again"
    found.pop(0)
    source.blocks()
    assert "block.20200101.physics" not in source._panel_rows
