"""The policy package imports without the daemons and declares the Rucio versions it supports."""

from __future__ import annotations

import subprocess
import sys

from packaging.specifiers import SpecifierSet

import juno_rucio_policy
from juno_rucio_policy import permission


def test_supported_version_covers_rucio_41() -> None:
    assert "41.5.1" in SpecifierSet(juno_rucio_policy.SUPPORTED_VERSION)
    assert "42.0.0" not in SpecifierSet(juno_rucio_policy.SUPPORTED_VERSION)


def test_every_algorithm_is_registered() -> None:
    # Rucio swallows ImportErrors inside get_algorithms(): calling it here surfaces them.
    assert juno_rucio_policy.get_algorithms() == {}


def test_other_actions_fall_back_to_rucio() -> None:
    assert permission.has_permission("alice", "add_rule", {}, session=None) is None
    assert permission.has_permission("root", "add_replicas", {"rse_id": "x"}, session=None) is None


def test_importable_without_the_daemons() -> None:
    code = "import sys, juno_rucio_policy, juno_rucio_policy.permission; assert 'juno_dcs' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
