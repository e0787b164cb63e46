"""`jsub dataset query|create|delete|register` against the test session's grid's real Rucio (users alice, bob).
Each jsub runs as a subprocess with the user's own client configuration."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from tests.conftest import Grid
from tests.integration.test_jsub_dispatcher import BIN, grid_env


def jsub(grid: Grid, account: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **grid_env(grid, account))
    proc = subprocess.run([str(BIN / "jsub"), "--registry", "/nonexistent-unused", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"jsub {args} failed {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def upload(grid: Grid, tmp_path: Path, account: str, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(os.urandom(1000))
    env = dict(os.environ, **grid_env(grid, account))
    proc = subprocess.run([str(BIN / "rucio"), "upload", "--rse", "IHEP_DISK", "--scope", f"user.{account}",
                           str(path)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert f"Successfully uploaded file {name}" in proc.stderr, proc.stdout + proc.stderr


def test_dataset_create_register_query_delete(grid: Grid, tmp_path: Path) -> None:
    tag = secrets.token_hex(3)
    ds = f"jsubtest.{tag}"
    assert f"user.alice:{ds} created" in jsub(grid, "alice", "dataset", "create", ds).stdout
    assert "exists already" in jsub(grid, "alice", "dataset", "create", f"user.alice:{ds}").stdout
    files = [f"jsubtest.{tag}.{i}.txt" for i in range(2)]
    for name in files:
        upload(grid, tmp_path, "alice", name)
    out = jsub(grid, "alice", "dataset", "register", ds, *files).stdout
    assert f"2 file(s) attached to user.alice:{ds} (0 already in it)" in out
    assert "0 file(s) attached" in jsub(grid, "alice", "dataset", "register", ds, files[0]).stdout
    out = jsub(grid, "alice", "dataset", "query", f"user.alice:{ds}").stdout
    assert all(f"user.alice:{name}  1000" in out for name in files)
    assert "2 file(s), 2000 bytes" in out
    # bob may not create in alice's scope, nor erase alice's dataset
    denied = jsub(grid, "bob", "dataset", "create", f"user.alice:{ds}.x", check=False)
    assert denied.returncode == 1
    assert "jsub: error: cannot create the dataset" in denied.stderr
    denied = jsub(grid, "bob", "dataset", "delete", f"user.alice:{ds}", check=False)
    assert denied.returncode == 1
    assert "jsub: error:" in denied.stderr
    out = jsub(grid, "alice", "dataset", "delete", f"user.alice:{ds}").stdout
    assert "expires now" in out


def test_dataset_errors_are_clear(grid: Grid) -> None:
    bad = jsub(grid, "alice", "dataset", "create", "bad name!", check=False)
    assert bad.returncode == 1
    assert "user.alice:bad name!: a name is 1-250 characters" in bad.stderr
    missing = jsub(grid, "alice", "dataset", "query", f"user.alice:nothing.{secrets.token_hex(3)}", check=False)
    assert missing.returncode == 1
    assert "cannot list the files of user.alice:nothing." in missing.stderr
