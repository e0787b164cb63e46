"""Operations, as the grid's operator tells it: after a data-taking day, a production and a user task have run,
the operator looks at `juno-dcs status`, runs the probes from the command line as docs/probes.md shows, and opens
the dashboard in a browser. Each of them sees what the other stories did: the day's blocks complete at every site
of the share, the copies from IHEP to CNAF and JINR in the throughput, the production's steps done, the jobs at
the sites, the ingestor's registrations, and every probe's newest run in the alarms panel."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import Grid
from tests.e2e.shell import Shell, wait_for
from tests.e2e.stories import DataTakingDay, MonteCarloProduction, UserTask
from tests.integration.browser import chromium

pytestmark = [pytest.mark.grid, pytest.mark.e2e]


def panel(url: str, name: str, **params: Any) -> Any:
    answer = requests.get(f"{url}/api/{name}", params=params, timeout=60)
    assert answer.status_code == 200, (name, answer.status_code, answer.text[:300])
    return answer.json()


def probe(operator: Shell, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return operator.run("juno-probe", name, "--config", str(operator.home / "etc" / "probes.yaml"), *args,
                        check=False)


# waits for the three stories (their own tests assert them in detail) before it looks: up to 15 minutes
@pytest.mark.timeout(1500)
def test_the_operator_sees_the_day_the_production_and_the_task_in_status_probes_and_dashboard(
        grid: Grid, data_taking_day: DataTakingDay, production: MonteCarloProduction, user_task: UserTask,
        tmp_path: Path) -> None:
    data_taking_day.wait()
    production.wait()
    user_task.wait()
    operator = Shell(grid, "root", tmp_path / "operator")

    status = operator.run("juno-dcs", "status", "--json", check=False)
    report = json.loads(status.stdout)
    assert status.returncode == 0, (report["down"], {k: v for k, v in report["health"].items() if not v["ok"]})
    assert report["down"] == {}
    dashboard = report["services"]["dashboard"]

    # the probes, by hand
    for name in ("rucio", "conditions", "dispatcher", "programs", "ingest-lag"):
        ran = probe(operator, name)
        assert ran.returncode == 0, (name, ran.stdout, ran.stderr)
        assert ran.stdout.startswith(f"{name.upper()} OK - "), ran.stdout
    queues = probe(operator, "transfer-queues")
    assert queues.stdout.startswith("TRANSFER-QUEUES "), queues.stdout

    # the dashboard's panels: the day's blocks complete where the share puts them
    blocks = {b["name"]: b for b in panel(dashboard, "blocks")["blocks"]}
    for block, expected in data_taking_day.blocks.items():
        assert block in blocks, sorted(blocks)[-10:]
        row = blocks[block]
        assert row["state"] == "closed"
        placed = {r["rse"]: r for r in row["rses"] if r["expected"]}
        assert sorted(placed) == sorted(expected), (block, placed)
        assert all(r["state"] == "complete" and r["files"] == row["files"] for r in placed.values()), placed

    # the copies of the day in the throughput: IHEP to CNAF and to JINR (the collector samples every 20 s)
    def channels() -> dict[str, float]:
        series = panel(dashboard, "throughput", hours=6)["series"]
        return {s["key"]: sum(p["y"] for p in s["points"]) for s in series}

    moved = wait_for("IHEP->CNAF and IHEP->JINR in the dashboard's throughput", channels,
                     lambda c: c.get("IHEP->CNAF", 0) > 0 and c.get("IHEP->JINR", 0) > 0, timeout=180)
    assert moved["IHEP->CNAF"] > 0

    # the production, step by step, and the jobs it ran at the sites
    productions = {p["name"]: p for p in panel(dashboard, "productions")["productions"]}
    assert production.name in productions, sorted(productions)
    steps = {s["step"]: s for s in productions[production.name]["steps"]}
    assert sorted(steps) == ["cal", "detsim", "elecsim", "rec"]
    for step in steps.values():
        assert step["jobs_by_state"].get("finished") == production.jobs, step

    # the ingestor's registrations, and every probe's newest run on the alarms panel
    ingest = panel(dashboard, "ingest", hours=6)
    assert sum(i["registered"] for i in ingest["instances"]) >= data_taking_day.files
    alarms = {p["probe"]: p for p in panel(dashboard, "probes")["probes"]}
    assert {"rucio", "conditions", "dispatcher", "programs", "ingest-lag", "stuck-rules"} <= set(alarms)
    assert alarms["programs"]["status"] == "OK", alarms["programs"]

    # and the page itself, in a browser: the alarms table and the day's blocks drawn
    with chromium() as browser:
        page = browser.new_page()
        page.goto(dashboard)
        page.wait_for_function("window.junoRefreshes >= 1", timeout=60_000)
        drawn = page.locator("#probes-table tr[data-probe]")
        assert drawn.count() == len(alarms)
        assert page.locator('#probes-table tr[data-probe="programs"]').get_attribute("data-status") == "OK"
        table = page.locator("#blocks-table").inner_text()
        for block in data_taking_day.blocks:
            assert block in table
