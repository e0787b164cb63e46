"""The policy package inside the grid's Rucio, through the stock `rucio` CLI as each account:
who may write and change what, where uploaded files land, and which names are refused."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from juno_rucio_policy.paths import path_for
from tests.conftest import Grid
from tests.integration import juno_names
from tests.integration.transfer_helpers import rule_until_ok

UNIQUE = uuid.uuid4().hex[:10]  # names of this run only (other tests of the session use pids)


def _refused(proc: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """The command failed (or, for upload, reported failure) and said every phrase. The refused commands run with
    -v: Rucio answers AccessDenied with HTTP 401, which the CLI logged in with a token (RUCIO_AUTH_TYPE=oidc, as
    `juno-dcs env` sets it) takes for an expired login; it then tries Rucio's own OIDC login and says only "Cannot
    authenticate". Its debug lines carry Rucio's answer."""
    said = re.sub(r"\s+", " ", proc.stdout + proc.stderr)
    for phrase in phrases:
        assert phrase in said, said


def _try(grid: Grid, *args: str, account: str) -> subprocess.CompletedProcess[str]:
    """The stock CLI as `account`, verbose (see _refused), whatever it answers."""
    return grid.rucio("-v", *args, account=account, check=False)


Check = tuple[tuple[str, ...], str, tuple[str, ...]]  # the CLI's arguments, the account, the phrases it must say


def _all_refused(grid: Grid, *checks: Check) -> None:
    """`_refused(_try(...))` of commands that change nothing (each is refused), run side by side: each waits
    mostly for its CLI to start and for Rucio's answer."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda check: _try(grid, *check[0], account=check[1]), checks))
    for (_, _, phrases), proc in zip(checks, answers, strict=True):
        _refused(proc, *phrases)


def _rule_id(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.strip().splitlines()[-1]


def _upload(grid: Grid, tmp_path: Path, rse: str, scope: str, name: str, account: str) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(64 * 1024))
    out = grid.rucio("upload", "--rse", rse, "--scope", scope, str(path), account=account)
    assert f"Successfully uploaded file {name}" in out.stderr, out.stderr
    return path


def test_raw_scope_is_the_raw_data_service_s(grid: Grid, tmp_path: Path) -> None:
    stream = juno_names.stream()
    block = f"raw:{juno_names.block(stream)}"
    raw = _upload(grid, tmp_path, "IHEP_DISK", "raw", juno_names.raw_file(stream_name=stream), "rawdata").name
    only_rawdata = "only the raw-data service account 'rawdata' writes the raw scope"

    _refused(_try(grid, "did", "add", "--type", "dataset", block, account="alice"),
             "Account alice can not add data identifier", only_rawdata)
    grid.rucio("did", "add", "--type", "dataset", block, account="rawdata")
    _refused(_try(grid, "did", "content", "add", "--to-did", block, f"raw:{raw}", account="production"),
             "can not add data identifiers to", only_rawdata)
    grid.rucio("did", "content", "add", "--to-did", block, f"raw:{raw}", account="rawdata")

    rule = _rule_id(grid.rucio("rule", "add", "--copies", "1", "--rses", "CNAF_DISK", block, account="rawdata"))
    # nobody but rawdata and root reduces the raw copies: not by deleting, shortening or moving the rule
    _all_refused(
        grid,
        (("rule", "add", "--copies", "1", "--rses", "IHEP_DISK", block), "alice",
         ("Account alice can not add replication rule", "only 'rawdata' places raw data")),
        (("rule", "remove", rule), "alice",
         ("Account alice can not remove this replication rule",
          "only 'rawdata' or root may delete a rule on raw data")),
        (("rule", "update", rule, "--lifetime", "60"), "production",
         ("only 'rawdata' or root may update a rule on raw data",)),
        (("rule", "move", rule, "--rses", "JINR_DISK"), "bob", ("only 'rawdata' or root may move a rule on raw data",)),
        (("did", "content", "remove", "--from-did", block, f"raw:{raw}"), "alice",
         ("can not detach data identifiers", only_rawdata)),
        (("did", "update", "--close", block), "bob", (only_rawdata,)),
    )

    grid.rucio("rule", "update", rule, "--lifetime", "86400", account="rawdata")
    grid.rucio("rule", "remove", rule, account="rawdata")
    root_rule = _rule_id(grid.rucio("rule", "add", "--copies", "1", "--rses", "JINR_DISK", block, account="root"))
    grid.rucio("rule", "remove", root_rule, account="root")
    grid.rucio("did", "update", "--close", block, account="rawdata")


def test_users_own_their_scope_and_their_rules(grid: Grid, tmp_path: Path) -> None:
    mine = _upload(grid, tmp_path, "IHEP_DISK", "user.alice", f"histos-{UNIQUE}.root", "alice").name
    did = f"user.alice:{mine}"
    _all_refused(
        grid,
        (("did", "add", "--type", "dataset", f"user.alice:bobs-{UNIQUE}"), "bob",
         ("bob writes only its own scope user.bob, not user.alice",)),
        (("did", "metadata", "set", did, "--key", "campaign", "--value", "x"), "bob",
         ("bob writes only its own scope user.bob, not user.alice",)),
        (("did", "add", "--type", "dataset", "mc:mc.J25.alice.detsim"), "alice",
         ("only the production account 'production' writes the mc scope",)),
    )
    grid.rucio("did", "add", "--type", "dataset", f"mc:mc.J25.t{UNIQUE}.detsim", account="production")

    # the upload made alice's rule at IHEP_DISK; a copy at CNAF_DISK is a second rule of hers
    rule = _rule_id(grid.rucio("rule", "add", "--copies", "1", "--rses", "CNAF_DISK", "--lifetime", "3600", did,
                               account="alice"))
    _all_refused(
        grid,
        (("rule", "remove", rule), "bob", (f"rule {rule} belongs to alice; bob may delete only its own rules",)),
        (("rule", "update", rule, "--lifetime", "60"), "bob",
         (f"rule {rule} belongs to alice; bob may update only its own rules",)),
        # changing the owner is not the owner's call: Rucio's generic rule (root and admins) decides
        (("rule", "update", rule, "--account", "bob"), "alice",
         ("Account alice can not update this replication rule",)),
        (("rule", "add", "--copies", "1", "--rses", "JINR_DISK", "--account", "bob", did), "alice",
         ("alice may add rules only for itself, not for bob",)),
        # anybody may ask for a copy of their own, within their quota: bob has none at CNAF_DISK
        (("rule", "add", "--copies", "1", "--rses", "CNAF_DISK", did), "bob",
         ("There is not enough quota left to fulfil the operation",)),
    )
    grid.rucio("rule", "update", rule, "--lifetime", "7200", "--comment", "keep for the talk", account="alice")
    grid.rucio("rule", "remove", rule, account="alice")


def test_files_land_at_the_documented_paths(grid: Grid, tmp_path: Path) -> None:
    stream = juno_names.stream()
    raw = juno_names.raw_file(3, run=4217, stream_name=stream)
    mc = f"mc.J25.t{UNIQUE}.detsim.004217.root"
    user = f"notes-{UNIQUE}.txt"
    placed = [("IHEP_DISK", "raw", raw, "rawdata"), ("CNAF_DISK", "mc", mc, "production"),
              ("IHEP_DISK", "user.alice", user, "alice")]
    for rse, scope, name, account in placed:
        data = _upload(grid, tmp_path, rse, scope, name, account).read_bytes()
        where = grid.rse_dir(rse) / path_for(scope, name)
        assert where.read_bytes() == data
    assert path_for("raw", raw) == f"raw/2026/1125/004217/{raw}"
    assert path_for("mc", mc) == f"mc/J25/t{UNIQUE}/detsim/004/{mc}"
    # a copy made by the conveyor lands at the same path on the other SE
    rule_until_ok(grid, f"raw:{raw}", "CNAF_DISK")
    assert (grid.rse_dir("CNAF_DISK") / path_for("raw", raw)).is_file()
    replicas = grid.rucio("replica", "list", "file", f"raw:{raw}", account="rawdata").stdout
    assert f"/raw/2026/1125/004217/{raw}" in replicas


def test_bad_names_are_refused_with_the_pattern(grid: Grid, tmp_path: Path) -> None:
    bad = tmp_path / "run1234_physics.raw"
    bad.write_bytes(b"x" * 100)
    _all_refused(
        grid,
        (("did", "add", "--type", "dataset", "raw:block.2026-11-25.physics"), "rawdata",
         ("raw collection: block.<YYYYMMDD>.<stream>",)),
        (("upload", "--rse", "IHEP_DISK", "--scope", "raw", str(bad)), "rawdata",
         ("RUN.<run:NNNNNN>.<stream>.<seq:NNNNN>.<YYYYMMDD>.rtraw",)),
        (("did", "add", "--type", "dataset", "mc:mc.J25.IBD.g4sim"), "production",
         ("mc.<campaign>.<tag>.<detsim|elecsim|cal|rec>",)),
        (("rule", "add", "--copies", "1", "--rses", "IHEP_DISK", "--activity", "Coffee Break", f"user.alice:x{UNIQUE}"),
         "alice", ("'Coffee Break' is not one of",)),
    )
    assert not list(grid.rse_dir("IHEP_DISK").rglob(bad.name))
    # JUNO's own activities are known to Rucio
    ok = _upload(grid, tmp_path, "IHEP_DISK", "user.alice", f"act-{UNIQUE}.root", "alice").name
    rule = _rule_id(grid.rucio("rule", "add", "--copies", "1", "--rses", "JINR_DISK", "--activity", "User Analysis",
                               f"user.alice:{ok}", account="alice"))
    grid.rucio("rule", "remove", rule, account="alice")
