"""Bad command-line arguments get a clear error (no grid needed)."""

from __future__ import annotations

import pytest

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
