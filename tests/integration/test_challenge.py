"""`juno-dcs challenge` on the session's grid, scaled down: every file reaches every T1 disk through Rucio, the
figures are there and positive, the report names each link and embeds real PNGs, and the run removes its rules,
replicas and files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import JUNO_DCS, Grid

T1_DISKS = ("CNAF_DISK", "JINR_DISK", "IN2P3_DISK")
PNG = b"\x89PNG\r\n\x1a\n"


def _challenge(grid: Grid, *args: str) -> tuple[dict[str, Any], str]:
    proc = subprocess.run([JUNO_DCS, "challenge", "--home", str(grid.home), "--json", *args], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout), proc.stderr


def _check_figures(figures: dict[str, Any], mode: str, files: int, size: int) -> None:
    assert (figures["mode"], figures["files"], figures["size_bytes"]) == (mode, files, size)
    for key in ("total_mb_per_s", "bare_mb_per_s", "challenge_ratio", "total_seconds", "bare_seconds"):
        assert figures[key] > 0, key
    assert figures["total_bytes"] == files * size * len(T1_DISKS)
    assert [(link["source"], link["destination"]) for link in figures["links"]] == [("IHEP_DISK", d)
                                                                                   for d in T1_DISKS]
    for link in figures["links"]:
        assert (link["files"], link["bytes"]) == (files, files * size)
        for key in ("seconds", "mb_per_s", "bare_seconds", "bare_mb_per_s"):
            assert link[key] > 0, (key, link)
        assert link["peak_active"] >= 0, link  # a 2 MB copy may start and end between two samples
        assert link["service"]["files"] == files, link  # the transfer service copied each file once
        assert link["service"]["verify_checksum"] == "both"
    assert set(figures["rules"]) == set(T1_DISKS)
    assert figures["phases"]["total_s"] == pytest.approx(figures["total_seconds"], abs=0.01)


def _check_report(figures: dict[str, Any]) -> None:
    index = Path(figures["report"])
    page = index.read_text()
    for dest in T1_DISKS:
        assert f"IHEP_DISK -&gt; {dest}" in page
    for png in ("throughput.png", "arrived.png"):
        assert f'src="{png}"' in page
        assert (index.parent / png).read_bytes()[:8] == PNG
    assert json.loads((index.parent / "result.json").read_text())["total_bytes"] == figures["total_bytes"]


def test_parallel_challenge_keeps_nothing_behind(grid: Grid) -> None:
    figures, progress = _challenge(grid, "--files", "6", "--size", "2MB", "--mode", "parallel", "--keep")
    _check_figures(figures, "parallel", 6, 2_000_000)
    _check_report(figures)
    assert "bare copies" in progress
    assert "rules, stage 1" in progress
    dataset = figures["dataset"]
    try:
        # kept: each rule OK (the source's and the three T1 disks'), every file at every T1 disk
        rules = grid.rucio("rule", "list", "--did", dataset).stdout
        for rse in ("IHEP_DISK", *T1_DISKS):
            assert re.search(rf"OK\[6/0/0\]\s+{rse}\s", rules), rules
        listed = grid.rucio("replica", "list", "file", dataset).stdout
        for dest in T1_DISKS:
            assert listed.count(f"| {dest}: davs://") == 6, listed
            stored = [p for p in grid.rse_dir(dest).rglob(f"RUN.000000.{dataset.split('.')[-1]}.*")]
            assert len(stored) == 6
            assert all(p.stat().st_size == 2_000_000 for p in stored)
    finally:  # what the run kept goes, whatever the checks found
        expire = ("from rucio.client import Client\nimport sys\n"
                  "for rule in sys.argv[1:]: Client().update_replication_rule(rule, {'lifetime': 1})")
        subprocess.run([sys.executable, "-c", expire, *figures["rules"].values(), figures["source_rule"]],
                       env=grid.env("root"), check=True, timeout=60)  # made with purge_replicas: all goes
    # a second run on the same grid does not collide with the first
    again, _ = _challenge(grid, "--files", "2", "--size", "1MB", "--mode", "parallel")
    assert again["dataset"] != dataset
    assert again["cleaned"]
    assert not again["cleanup_problems"]


@pytest.mark.slow  # a second whole challenge; make test keeps the parallel one
def test_each_challenge_runs_the_links_one_by_one_and_cleans_up(grid: Grid) -> None:
    figures, progress = _challenge(grid, "--files", "6", "--size", "2MB", "--mode", "each")
    _check_figures(figures, "each", 6, 2_000_000)
    _check_report(figures)
    assert "rules, stage 3" in progress
    # the stages did not overlap: each link's rule came after the previous one was OK
    links = figures["links"]
    assert all(link["seconds"] < figures["total_seconds"] for link in links)
    assert figures["cleaned"]
    assert not figures["cleanup_problems"], figures["cleanup_problems"]
    stream = figures["dataset"].split(".")[-1]
    for rse in ("IHEP_DISK", *T1_DISKS):
        assert not [p for p in grid.rse_dir(rse).rglob(f"*.{stream}.*")], rse
    listed = grid.rucio("replica", "list", "file", figures["dataset"], check=False).stdout
    assert ".rtraw" not in listed, listed


def test_bad_size_names_the_option(grid: Grid) -> None:
    proc = subprocess.run([JUNO_DCS, "challenge", "--home", str(grid.home), "--size", "12 bananas"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "--size: '12 bananas': unknown unit 'bananas'" in proc.stderr
