"""`juno-probe rucio` against the running grid."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import BIN, Grid


def _probe(grid: Grid, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "juno-probe"), "rucio", "--rucio-config", str(config)], capture_output=True,
                          text=True, check=False, timeout=60)


def test_probe_ok_on_a_healthy_grid(grid: Grid) -> None:
    proc = _probe(grid, grid.home / "etc" / "clients" / "production.cfg")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("RUCIO OK - Rucio 41.5.1")
    assert "| ping_time=" in proc.stdout


def test_probe_critical_on_a_wrong_password(grid: Grid, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    text = (grid.home / "etc" / "clients" / "alice.cfg").read_text()
    cfg.write_text("\n".join("password = wrong" if line.startswith("password") else line for line in text.splitlines()))
    proc = _probe(grid, cfg)
    assert proc.returncode == 2
    assert "login as alice failed" in proc.stdout


def test_probe_unknown_without_configuration(tmp_path: Path) -> None:
    proc = _probe(Grid(tmp_path, 0), tmp_path / "missing.cfg")
    assert proc.returncode == 3
    assert "cannot read the Rucio client configuration" in proc.stdout
