"""benchmarks/scale.py scaled down on the session's grid: the catalogue really holds the files in JUNO's shape, the
results have every figure at each point, the plots are PNG files. `make test` runs it at 20,000 files (one unit
registered through Rucio, one copied by the COPY fill); `make test-all` at 50,000 files and 10,000 jobs in the
dispatcher's tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.scale_aims import COMMANDS, THROUGHPUTS
from benchmarks.scale_shape import MC_CAMPAIGN, RAW_STREAM, expected_counts

from tests.conftest import Grid

pytestmark = [pytest.mark.grid]

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_FIGURES = ("files_per_s", "latency_p99_s", "server_db_cpu_s_per_1000_files", "rule_10k_locks_s",
                     "database_bytes", "fill_s", "fill_files_per_s", *COMMANDS["points"])
JOBS_FIGURES = ("submit_10k_s", *THROUGHPUTS["jobs_points"], *COMMANDS["jobs_points"])


def _files(client: object, scope: str, pattern: str) -> int:
    return sum(int(client.get_did(scope, name)["length"] or 0)  # type: ignore[attr-defined]
               for name in client.list_dids(scope, {"name": pattern}, did_type="dataset"))  # type: ignore[attr-defined]


@pytest.mark.timeout(900)  # the fill and every figure at a point: about 2 minutes
def test_the_smallest_run_fills_the_shape_and_reports_every_figure(grid: Grid, tmp_path: Path) -> None:
    scaled_down_run(grid, tmp_path, 20_000, 0, ["--messages", "200", "--rate", "50", "--seconds", "1",
                                                "--rule-files", "100"])


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the fill and every figure at a point: minutes on a machine shared with other grids
def test_scaled_down_run_fills_the_shape_and_reports_every_figure(grid: Grid, tmp_path: Path) -> None:
    scaled_down_run(grid, tmp_path, 50_000, 10_000, ["--messages", "300", "--rate", "50", "--seconds", "2",
                                                     "--rule-files", "200"])


def scaled_down_run(grid: Grid, tmp_path: Path, files: int, jobs: int, options: list[str]) -> None:
    from juno_dcs.grid.home import GridHome
    from juno_dcs.grid.launcher import root_client

    out, images = tmp_path / "scale.json", tmp_path / "images"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--home", str(grid.home),
                           "--points", str(files), "--jobs-points", str(jobs) if jobs else "", *options,
                           "--out", str(out), "--images", str(images)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert [p["files"] for p in result["points"]] == [files]
    assert [p["jobs"] for p in result["jobs_points"]] == ([jobs] if jobs else [])
    for point in result["points"]:
        missing = [f for f in CATALOGUE_FIGURES if f not in point]
        assert not missing, missing
        assert point["files_per_s"] > 0
        assert point["database_bytes"] > 0
    # fewer, or none, when the grid had some of them already (an earlier, smaller run; JUNO_TEST_GRID_HOME)
    assert 0 <= result["points"][0]["filled_files"] <= files
    for point in result["jobs_points"]:
        assert all(point.get(f) is not None for f in JOBS_FIGURES), point
    if jobs:
        assert result["jobs_points"][0]["jobs_in_tables"] == jobs
    assert {a["figure"] for a in result["aims_checked"]} >= set(COMMANDS["points"])
    assert result["largest"]["files"] == files
    assert json.loads(out.read_text())["points"] == result["points"]
    assert result["plots"]
    for plot in result["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    home = GridHome(grid.home)
    client = root_client(home, home.load_state())
    want = expected_counts(files)
    assert _files(client, "raw", f"block.2020*.{RAW_STREAM}") == want["raw"]
    assert _files(client, "mc", f"mc.{MC_CAMPAIGN}.p*") == want["mc"]
    user = sum(_files(client, s, "scale.u*") for s in client.list_scopes() if s.startswith("user."))
    assert user == want["user"]
    block = next(iter(client.list_dids("raw", {"name": f"block.*.{RAW_STREAM}"}, did_type="dataset")))
    replicas = list(client.list_replicas([{"scope": "raw", "name": block}]))
    assert len(replicas) == 1000
    assert all("IHEP_DISK" in r["rses"] for r in replicas)
    assert all(r["adler32"] and r["bytes"] for r in replicas)

    # raw status fetches the metadata and rules of many blocks in one call each: the same views as block by block
    from juno_dcs.ingest.status import BULK_FROM, block_view, raw_status
    from juno_dcs.packaged import data_file
    from juno_dcs.topology import load_topology

    topology = load_topology(data_file("topology.yaml"))
    bulk = raw_status(client, topology, stream=RAW_STREAM)
    assert len(bulk) >= BULK_FROM
    closed = [b for b in bulk if b.state == "closed"]  # an open block of another test may change in between
    assert closed == [block_view(client, "raw", b.name, topology) for b in closed]
