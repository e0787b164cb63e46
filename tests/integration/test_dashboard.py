"""The dashboard on the running grid: raw data through the ingestor (blocks, rules, transfers), a small
production, one HTTP-TPC probe run and one stuck-rules run; then headless Chromium loads the page from
`status --json`'s services.dashboard and every chart is drawn with data, the TPC matrix shows the probe's results,
and a screenshot is saved (to $JUNO_TEST_ARTIFACTS if set, else under pytest's tmp_path)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import requests
import yaml
from rucio.common.exception import RuleNotFound

from juno_dcs.grid.home import GridHome
from juno_dcs.grid.launcher import root_client
from tests.conftest import BIN, Grid, run
from tests.integration.browser import chromium

CHARTS = ("throughput", "jobs", "tpc", "blocks", "productions", "ingest")
SOURCE, TARGET = "MSU_DISK", "JINR_DISK"  # of the rule made stuck: neither is on the raw data's or TPC probe's way
BLOCKED = f"source RSE {SOURCE} is not available for reading (holds the only replica of 1 file)"


def _wait_all(conditions: dict[str, Callable[[], bool]], timeout: float, every: float = 3.0) -> None:
    """Until every condition holds (each is checked until it first does); at the deadline, name those that never
    did."""
    pending = dict(conditions)
    deadline = time.monotonic() + timeout
    while pending:
        pending = {what: check for what, check in pending.items() if not check()}
        if pending and time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {', '.join(pending)}")
        if pending:
            time.sleep(every)


def _api(url: str, path: str) -> Any:
    with requests.get(f"{url}api/{path}", timeout=30) as reply:
        reply.raise_for_status()
        return reply.json()


def _some_point_above_zero(panel: dict[str, Any], since: float, prefix: str = "") -> bool:
    """A point above zero in a slot that began at `since` (epoch seconds) or later: this test's data."""
    return any(p["y"] > 0 and p["x"] >= since * 1000 for s in panel["series"] if s["key"].startswith(prefix)
               for p in s["points"])


def _artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ["JUNO_TEST_ARTIFACTS"]) if os.environ.get("JUNO_TEST_ARTIFACTS") else tmp_path
    where.mkdir(parents=True, exist_ok=True)
    return where


def _production(grid: Grid, tmp_path: Path) -> str:
    tag = f"GT-DASH-{uuid.uuid4().hex[:6]}"
    run([str(BIN / "juno-payload"), "make-conditions", "--tag", tag, "--runs", "1-999999", "--home", str(grid.home)])
    name = f"e-dash-{uuid.uuid4().hex[:4]}"
    steering = tmp_path / f"{name}.yaml"
    steering.write_text(yaml.safe_dump({
        "name": name, "campaign": "ITdash", "software": "J25.1.0",
        "args": {"detsim": "gun --particles e- --momentums 2.0"}, "events_per_job": 10, "jobs": 3,
        "workflow": ["detsim", "elecsim"], "conditions_tag": tag, "run": 4321, "output_storage": "site-local",
        "destinations": ["CNAF_DISK"], "lifetime": "2 days"}))
    run([str(BIN / "juno-prod"), "submit", str(steering)], env=grid.env("production"))
    return name


def _probe(grid: Grid, *args: str, exit_code: int) -> subprocess.CompletedProcess[str]:
    proc = run([str(BIN / "juno-probe"), *args, "--config", str(grid.home / "etc" / "probes.yaml")],
               env=grid.env(), check=False, timeout=300)
    assert proc.returncode == exit_code, f"juno-probe {args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@contextlib.contextmanager
def _stuck_rule(grid: Grid, tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    """A rule made STUCK on purpose: one file whose only replica is on SOURCE, replicated to TARGET while SOURCE
    is not available for reading; (client, rule id, DID). Everything is undone at the end."""
    home = GridHome(grid.home)
    client = root_client(home, home.load_state())
    tag = uuid.uuid4().hex[:10]
    account, name = f"dash{tag}", f"stuck.{tag}.dat"
    scope = f"user.{account}"
    client.add_account(account, "USER", "dashboard@example.org")
    client.add_scope(account, scope)
    for rse in (SOURCE, TARGET):
        client.set_local_account_limit(account, rse, 10**9)
    (tmp_path / name).write_bytes(os.urandom(2000))
    grid.rucio("upload", "--rse", SOURCE, "--scope", scope, str(tmp_path / name))
    did = {"scope": scope, "name": name}
    client.update_rse(SOURCE, {"availability_read": False})
    rules: list[str] = []
    try:
        rules += client.add_replication_rule([did], 1, TARGET, account=account)
        yield client, rules[0], f"{scope}:{name}"
    finally:
        client.update_rse(SOURCE, {"availability_read": True})
        for rule in [*rules, *(r["id"] for r in client.list_replication_rules(did))]:
            with contextlib.suppress(RuleNotFound):
                client.delete_replication_rule(rule, purge_replicas=True)
        client.delete_account(account)


def _stop_collector(collector: subprocess.Popen[bytes], log: IO[str]) -> int:
    if collector.poll() is None:
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=60)
    log.close()
    return collector.returncode


def test_the_dashboard_draws_every_panel_with_the_grids_data(grid: Grid, tmp_path: Path) -> None:
    status = grid.status()
    url = status["services"]["dashboard"]  # type: ignore[index]
    assert url == f"http://127.0.0.1:{grid.base_port + 60}/"
    assert status["health"]["dashboard"]["ok"], status["health"]  # type: ignore[index]

    # a second collector, sampling every 2 s, beside the dashboard's own (two at once must be safe)
    config = yaml.safe_load((grid.home / "etc" / "dashboard.yaml").read_text())
    fast = tmp_path / "monitor-fast.yaml"
    fast.write_text(yaml.safe_dump({**config, "sample_s": 2.0}))
    fast.chmod(0o600)
    log = (tmp_path / "collector.log").open("w")
    collector = subprocess.Popen([str(BIN / "juno-dashboard"), "collect", "--config", str(fast)],
                                 env=grid.env(), stdout=log, stderr=subprocess.STDOUT)
    with contextlib.ExitStack() as undo:
        undo.callback(_stop_collector, collector, log)
        undo.enter_context(grid.stopped("probes"))  # the newest stored probe runs are the test's
        client, rule_id, stuck_did = undo.enter_context(_stuck_rule(grid, tmp_path))
        started = time.time() - 60  # a slot or bucket that holds the start began up to a minute before
        stream = "dash" + uuid.uuid4().hex[:6]
        grid.juno_dcs("spade-sim", "--files", "6", "--days", "3", "--size", "200KB", "--stream", stream,
                      "--no-progress")
        name = _production(grid, tmp_path)
        _probe(grid, "tpc", "--rses", "IHEP_DISK,CNAF_DISK", "--size", "100000", exit_code=0)

        def production_done() -> bool:
            prods = {p["name"]: p for p in _api(url, "productions")["productions"]}
            steps = prods.get(name, {}).get("steps", [])
            return len(steps) == 2 and steps[-1]["jobs_by_state"].get("finished", 0) == 3

        def our_blocks_replicated() -> bool:
            ours = [b for b in _api(url, "blocks")["blocks"] if b["name"].endswith(f".{stream}")]
            return len(ours) == 3 and all(
                any(r["files"] > 0 for r in b["rses"] if r["site"] != "IHEP" and r["expected"]) for b in ours)

        _wait_all({"the production's elecsim jobs finished": production_done,
                   "the raw blocks replicated beyond IHEP": our_blocks_replicated,
                   "throughput from IHEP": lambda: _some_point_above_zero(_api(url, "throughput"), started, "IHEP->"),
                   "a running job sampled": lambda: _some_point_above_zero(_api(url, "jobs"), started),
                   "the rule made stuck is STUCK": lambda: str(client.get_replication_rule(rule_id)["state"])
                   .endswith("STUCK")}, 420)
        # WARNING from one STUCK rule, CRITICAL only from a million: whatever else the shared grid holds
        _probe(grid, "stuck-rules", "--critical", "1000000", exit_code=1)
        assert _stop_collector(collector, log) == 0, (tmp_path / "collector.log").read_text()

        tpc = _api(url, "tpc")
        assert tpc["modes"] == ["pull", "push", "streamed"]
        assert all(tpc["matrix"][m]["IHEP_DISK"]["CNAF_DISK"]["ok"] for m in tpc["modes"]), tpc["failing"]
        panel = _api(url, "stuck-rules")
        assert panel["probe_status"] == "WARNING", panel
        [ours] = [r for r in panel["rules"] if r["rule_id"] == rule_id]
        assert (ours["did"], ours["rse_expression"], ours["state"]) == (stuck_did, TARGET, "STUCK"), ours
        assert BLOCKED in ours["reason"], ours
        with requests.get(f"{url}openapi.json", timeout=30) as spec:
            assert {"/api/throughput", "/api/blocks", "/api/stuck-rules"} <= set(spec.json()["paths"])

        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(url)
            page.wait_for_function("window.junoRefreshes >= 1", timeout=60_000)
            drawn = page.evaluate("""Object.fromEntries(Object.entries(window.junoCharts).map(([k, c]) =>
                [k, c.data.datasets.map(d => d.data.filter(p => (typeof p === 'number' ? p : p.y) > 0).length)]))""")
            errors = page.evaluate("[...document.querySelectorAll('.err')].map(e => e.textContent).filter(t => t)")
            ok_cells = page.locator("#tpc-matrix td.ok").count()
            stuck_text = page.locator("#stuck-table").inner_text()
            shot = _artifacts(tmp_path) / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
    assert errors == []
    assert set(CHARTS) <= set(drawn)
    empty = [c for c in CHARTS if c != "ingest" and not any(drawn[c])]
    assert not empty, f"charts without data: {empty} ({json.dumps(drawn)})"
    assert drawn["ingest"], "the ingest chart has no line"  # lag is 0 on a quiet grid: a line of zeros
    assert ok_cells >= 3 * 2  # both directions of the pair in each mode
    assert stuck_text.startswith("WARNING: "), stuck_text[:300]
    assert rule_id in stuck_text
    assert BLOCKED in stuck_text
    assert shot.stat().st_size > 10_000
