"""Bad command-line arguments get a clear error (no grid needed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from juno_dcs.packaged import data_file
from tests.conftest import JUNO_DCS, run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--base-port", "80"], "80 is not in the range"),
        (["up", "--base-port", "lots"], "'lots' is not a valid integer"),
        (["up", "--topology", "/nonexistent.yaml"], "does not exist"),
        (["status", "--home", "/nonexistent-grid-home"], "no grid here"),
        (["env", "--home", "/nonexistent-grid-home"], "no grid here"),
        (["down", "--home", "/nonexistent-grid-home"], "no grid here"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_cli_arguments(args: list[str], message: str) -> None:
    proc = run([JUNO_DCS, *args], check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_up_refuses_a_bad_policy_before_touching_anything(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    shutil.copytree(data_file("placement"), etc / "placement")  # an override of the package's placement/
    raw = etc / "placement" / "raw.yaml"
    raw.write_text(raw.read_text().replace("rse_expression: CNAF_DISK", "rse_expression: CNAF_DISKK", 1))
    home = tmp_path / "home"
    proc = run([JUNO_DCS, "up", "--home", str(home)], env={**os.environ, "JUNO_DCS_ETC_DIR": str(etc)}, check=False)
    assert proc.returncode != 0
    assert "the policy is not valid" in proc.stderr, proc.stderr
    assert f"{raw}:" in proc.stderr, proc.stderr
    assert "CNAF_DISKK" in proc.stderr, proc.stderr
    assert not home.exists()  # nothing was written, started or applied


def test_version_names_the_three_packages_and_rucio() -> None:
    from importlib.metadata import version

    proc = run([JUNO_DCS, "--version"])
    assert proc.stdout.strip() == (f"juno-dcs {version('juno-dcs')}, juno-rucio-policy {version('juno-rucio-policy')}, "
                                   f"juno-probes {version('juno-probes')}, rucio {version('rucio')}")
