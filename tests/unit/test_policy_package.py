"""The policy package: names, paths, scope extraction, tape hints, schema and permission decisions (no server)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

import juno_rucio_policy
from juno_rucio_policy import naming, paths, permission, scope, tape

RAW = "RUN.001234.physics.00007.20261125.rtraw"
MC = "mc.J25.IBD.detsim.004217.root"
REC = "rec.P1.RUN.001234.physics.00007.20261125.root"


def test_supported_version_covers_rucio_41() -> None:
    assert "41.5.1" in SpecifierSet(juno_rucio_policy.SUPPORTED_VERSION)
    assert "42.0.0" not in SpecifierSet(juno_rucio_policy.SUPPORTED_VERSION)


def test_every_algorithm_is_registered() -> None:
    # Rucio swallows ImportErrors inside get_algorithms(): calling it here surfaces them.
    algorithms = juno_rucio_policy.get_algorithms()
    assert set(algorithms) == {"lfn2pfn", "pfn2lfn", "scope", "fts3_tape_metadata_plugins"}
    assert all(set(by_name) == {"juno"} and all(map(callable, by_name.values())) for by_name in algorithms.values())


def _rucio_cfg(tmp_path: Path) -> dict[str, str]:
    cfg = tmp_path / "rucio.cfg"
    cfg.write_text("[client]\nrucio_host = http://127.0.0.1:9\nauth_host = http://127.0.0.1:9\naccount = root\n"
                   "auth_type = userpass\nusername = root\npassword = x\n"
                   "[policy]\npackage = juno_rucio_policy\nlfn2pfn_algorithm_default = juno\nextract_scope = juno\n"
                   "pfn2lfn = juno\n[transfers]\nfts3tape_metadata_plugins = juno\n")
    return {"RUCIO_CONFIG": str(cfg), "PATH": "/usr/bin:/bin"}


def test_rucio_itself_finds_every_algorithm(tmp_path: Path) -> None:
    """Through Rucio's own loaders, as the server and the clients use them."""
    code = f"""
import json
import os
from rucio.rse.translation import RSEDeterministicTranslation, RSEDeterministicScopeTranslation
from rucio.common.utils import extract_scope
from rucio.common.plugins import PolicyPackageAlgorithms
from rucio.transfertool.fts3_plugins import FTS3TapeMetadataPlugin
PolicyPackageAlgorithms()
print(json.dumps({{
  "registered": {{t: sorted(PolicyPackageAlgorithms._ALGORITHMS.get(t, {{}})) for t in
                 ("lfn2pfn", "pfn2lfn", "scope", "fts3_tape_metadata_plugins")}},
  "path": RSEDeterministicTranslation("IHEP_DISK", {{}}, {{}}).path("raw", "{RAW}"),
  "scope": list(extract_scope("{MC}")),
  "pfn2lfn": list(RSEDeterministicScopeTranslation().parser({{"path": "/user/alice/3f/0a/", "name": "h.root"}})),
  "tape": FTS3TapeMetadataPlugin("juno").hints({{"scope": "raw", "name": "{RAW}"}}),
}}))
"""
    out = subprocess.run([sys.executable, "-c", code], env=_rucio_cfg(tmp_path), capture_output=True, text=True,
                         check=True).stdout
    got = json.loads(out.splitlines()[-1])
    assert all("juno" in names for names in got["registered"].values()), got["registered"]
    assert got["path"] == f"raw/2026/1125/001234/{RAW}"
    assert got["scope"] == ["mc", MC]
    assert got["pfn2lfn"] == ["h.root", "user.alice"]
    assert got["tape"]["archive_metadata"]["collocation_hints"]["1"] == "block.20261125.physics"


def test_rucio_schema_refuses_bad_names_and_admits_good_ones(tmp_path: Path) -> None:
    code = """
import json, sys
from rucio.common.schema import validate_schema
cases = json.loads(sys.stdin.read())
out = []
for name, obj in cases:
    try:
        validate_schema(name, obj)
        out.append("ok")
    except Exception as exc:
        out.append(str(exc))
print(json.dumps(out))
"""
    cases: list[tuple[str, Any]] = [
        ("did", {"scope": "raw", "name": RAW, "type": "FILE"}),
        ("did", {"scope": "raw", "name": "block.20261125.physics", "type": "DATASET"}),
        ("dids", [{"scope": "mc", "name": MC, "type": "FILE", "bytes": 1}]),
        ("did", {"scope": "user.alice", "name": "my-histos.v2.root", "type": "FILE"}),
        ("activity", "Tape Archival"),
        ("did", {"scope": "raw", "name": "run1234.raw", "type": "FILE"}),
        ("did", {"scope": "raw", "name": "block.2026-11-25.physics", "type": "DATASET"}),
        ("did", {"scope": "raw", "name": RAW, "type": "DATASET"}),
        ("dids", [{"scope": "mc", "name": "mc.J25.IBD.g4sim.000001.root", "type": "FILE"}]),
        ("scope", "Physics"),
        ("activity", "Coffee"),
        ("attachments", [{"scope": "raw", "name": "block.20261125.physics", "rse": "IHEP_DISK",
                          "dids": [{"scope": "raw", "name": RAW, "bytes": 1, "adler32": "0000abcd"},
                                   {"scope": "raw", "name": "run1234.raw", "bytes": 1}]}]),
        ("attachments", [{"scope": "raw", "name": "block.20261125.physics",
                          "dids": [{"scope": "raw", "name": RAW}, {"scope": "user.alice", "name": "any.thing"}]}]),
    ]
    proc = subprocess.run([sys.executable, "-c", code], env=_rucio_cfg(tmp_path), input=json.dumps(cases),
                          capture_output=True, text=True, check=True)
    # Rucio prints the schema wrapped, splitting a long string into 'a ' 'b': join the pieces again
    got = [re.sub(r"'\s*\n\s*'", "", m) for m in json.loads(proc.stdout.splitlines()[-1])]
    assert got[:5] == ["ok"] * 5
    assert "raw file: RUN.<run:NNNNNN>.<stream>.<seq:NNNNN>.<YYYYMMDD>.rtraw" in got[5]
    assert "raw collection: block.<YYYYMMDD>.<stream>" in got[6]
    assert "collection: block.<YYYYMMDD>.<stream>" in got[7]
    assert "mc.<campaign>.<tag>.<detsim|elecsim|cal|rec>.<job:NNNNNN>.<root|log.tgz>" in got[8]
    assert "JUNO scope: raw, mc, rec, calib, user.<account> or group.<name>" in got[9]
    assert "'Coffee' is not one of" in got[10]
    # a bulk attachment's files come without a type: each is held to its scope's names, files or collections
    assert "'run1234.raw' does not match" in got[11]
    assert "raw DID: RUN.<run:NNNNNN>" in got[11]
    assert got[12] == "ok"


@pytest.mark.parametrize(("scope_", "name", "kind", "data_type"), [
    ("raw", RAW, "raw.file", "raw"),
    ("raw", "block.20261125.physics", "raw.block", "raw"),
    ("mc", MC, "mc.file", "mc.detsim"),
    ("mc", "mc.J25.IBD.elecsim.000001.log.tgz", "mc.file", "log"),
    ("mc", "mc.J25.IBD.cal", "mc.dataset", "mc.cal"),
    ("mc", "mc.J25.IBD.rec.log", "mc.dataset", "log"),
    ("mc", "mc.J25.IBD", "mc.container", "mc.rec"),
    ("rec", REC, "rec.file", "rec"),
    ("rec", "rec.P1.block.20261125.physics", "rec.block", "rec"),
    ("user.alice", "histos.root", "generic", "user"),
    ("group.solar", "b8.v1", "generic", "group"),
    ("calib", "pmt.gains.2026", "generic", "calib"),
])
def test_good_names_parse(scope_: str, name: str, kind: str, data_type: str) -> None:
    parsed = naming.parse(scope_, name)
    assert (parsed.kind, parsed.data_type) == (kind, data_type)


@pytest.mark.parametrize(("scope_", "name", "reason"), [
    ("raw", "RUN.1234.physics.00007.20261125.rtraw", "expected RUN.<run:NNNNNN>"),
    ("raw", "RUN.001234.Physics.00007.20261125.rtraw", "is not a JUNO raw name"),
    ("raw", "RUN.001234.physics.00007.20261131.rtraw", "20261131 is not a calendar date"),
    ("raw", "RUN.001234.physics.00007.20261125.root", "is not a JUNO raw name"),
    ("raw", "block.20261125", "block.<YYYYMMDD>.<stream>"),
    ("raw", "block.20260230.physics", "20260230 is not a calendar date"),
    ("mc", "mc.J25.IBD.detsim.42.root", "<job:NNNNNN>"),
    ("mc", "J25.IBD.detsim.000042.root", "is not a JUNO mc name"),
    ("rec", "rec.P1.something.with.too.many.parts.x", "is not a JUNO rec name"),
    ("Raw", RAW, "is not a JUNO scope"),
    ("user.alice", ".hidden", "starts with a letter or digit"),
    ("user.alice", "a" * 251, "1-250 characters"),
    ("user.alice", "x/", "starts with a letter or digit"),
])
def test_bad_names_say_why(scope_: str, name: str, reason: str) -> None:
    with pytest.raises(naming.BadName, match=None) as info:
        naming.parse(scope_, name)
    assert reason in str(info.value)


def test_files_and_collections_are_told_apart() -> None:
    assert naming.problem("raw", "block.20261125.physics", collection=False) is not None
    assert naming.problem("raw", RAW, collection=True) is not None
    assert naming.block_name(dt.date(2026, 1, 2), "physics") == "block.20260102.physics"
    with pytest.raises(naming.BadName):
        naming.block_name(dt.date(2026, 1, 2), "Physics")
    assert naming.raw_file_name(1234, "physics", 7, dt.date(2026, 11, 25)) == RAW
    assert naming.mc_file_name("J25", "IBD", "detsim", 4217) == MC


@pytest.mark.parametrize(("scope_", "name", "path"), [
    ("raw", RAW, f"raw/2026/1125/001234/{RAW}"),
    ("mc", MC, f"mc/J25/IBD/detsim/004/{MC}"),
    ("mc", "mc.J25.IBD.detsim.000999.log.tgz", "mc/J25/IBD/detsim/000/mc.J25.IBD.detsim.000999.log.tgz"),
    ("rec", REC, f"rec/P1/2026/1125/001234/{REC}"),
])
def test_paths_follow_the_name(scope_: str, name: str, path: str) -> None:
    assert paths.lfn2pfn(scope_, name, "ANY_RSE", {}, {}) == path
    assert paths.pfn2lfn({"path": "/" + path.rsplit("/", 1)[0] + "/", "name": name}) == (name, scope_)


def test_other_names_are_hashed_like_rucio_does() -> None:
    path = paths.path_for("user.alice", "histos.root")
    assert path.startswith("user/alice/")
    assert path.endswith("/histos.root")
    assert len(path.split("/")) == 5
    assert path == paths.path_for("user.alice", "histos.root")  # deterministic
    assert paths.pfn2lfn({"path": path.rsplit("/", 1)[0], "name": "histos.root"}) == ("histos.root", "user.alice")
    assert paths.path_for("calib", "gains.db").startswith("calib/")
    with pytest.raises(ValueError, match="no scope"):
        paths.pfn2lfn({"path": "/", "name": "x"})


@pytest.mark.parametrize(("did", "expected"), [
    (RAW, ("raw", RAW)),
    ("block.20261125.physics", ("raw", "block.20261125.physics")),
    (MC, ("mc", MC)),
    (REC, ("rec", REC)),
    ("user.alice.histos.root", ("user.alice", "user.alice.histos.root")),
    ("group.solar.b8", ("group.solar", "group.solar.b8")),
    ("calib.gains", ("calib", "calib.gains")),
    ("mc:mc.J25.IBD", ("mc", "mc.J25.IBD")),
    ("user.bob:some/dir/", ("user.bob", "some/dir/")),
])
def test_scope_extraction(did: str, expected: tuple[str, str]) -> None:
    assert scope.extract_scope(did, None) == expected


@pytest.mark.parametrize("did", ["", "a:b:c", ":x", "raw:"])
def test_scope_extraction_refuses(did: str) -> None:
    with pytest.raises(scope.ScopeError):
        scope.extract_scope(did)


def test_tape_hints() -> None:
    assert tape.collocation_hints({"scope": "raw", "name": RAW}) == {
        "collocation_hints": {"0": "raw", "1": "block.20261125.physics", "2": "run001234"}}
    assert tape.hints_for("mc", MC) == {"0": "mc", "1": "J25.IBD", "2": "detsim"}
    assert tape.hints_for("rec", REC) == {"0": "rec", "1": "P1", "2": "run001234"}
    assert tape.hints_for("user.alice", "x.root") == {"0": "user"}

    class Internal:
        external = "raw"

    assert tape.collocation_hints({"scope": Internal(), "name": RAW})["collocation_hints"]["0"] == "raw"


@pytest.mark.parametrize(("account", "scope_", "problem"), [
    ("rawdata", "raw", None),
    ("root", "raw", None),
    ("alice", "raw", "only the raw-data service account 'rawdata' writes the raw scope"),
    ("production", "raw", "only the raw-data service account"),
    ("production", "mc", None),
    ("rawdata", "mc", "only the production account 'production' writes the mc scope"),
    ("alice", "rec", "writes the rec scope"),
    ("alice", "user.alice", None),
    ("bob", "user.alice", "bob writes only its own scope user.bob, not user.alice"),
    ("alice", "calib", None),
])
def test_who_writes_which_scope(account: str, scope_: str, problem: str | None) -> None:
    got = permission.writer_problem(account, scope_)
    assert got == problem if problem is None else problem in (got or "")


def _decide(who: str, action: str, **kwargs: Any) -> permission.Verdict:
    return permission.has_permission(who, action, kwargs, session=None)


def test_did_writes_are_decided_per_scope() -> None:
    assert _decide("alice", "add_did", scope="raw", name="block.20261125.physics") == permission.Decision(
        False, "only the raw-data service account 'rawdata' writes the raw scope")
    assert _decide("rawdata", "add_did", scope="raw", name="x")
    assert _decide("alice", "add_did", scope="calib", name="x") is None  # Rucio's scope ownership decides
    assert not _decide("alice", "add_dids", dids=[{"scope": "user.alice"}, {"scope": "mc"}])
    assert not _decide("bob", "attach_dids_to_dids", attachments=[{"scope": "user.alice", "name": "d"}])
    assert not _decide("alice", "detach_dids", scope="raw", name="block.20261125.physics")
    assert not _decide("bob", "set_metadata", scope="user.alice", name="x", key="k", value="v")
    assert _decide("root", "set_status", scope="raw", name="x")


def test_rule_creation() -> None:
    raw = [{"scope": "raw", "name": "block.20261125.physics"}]
    assert not _decide("alice", "add_rule", dids=raw, account="alice", locked=False)
    assert _decide("rawdata", "add_rule", dids=raw, account="rawdata", locked=False)
    assert _decide("root", "add_rule", dids=raw, account="rawdata", locked=True)
    mine = [{"scope": "mc", "name": "mc.J25.IBD"}]
    assert _decide("alice", "add_rule", dids=mine, account="alice", locked=False)
    refused = _decide("alice", "add_rule", dids=mine, account="bob", locked=False)
    assert refused is not None
    assert "alice may add rules only for itself, not for bob" in refused.message
    assert _decide("alice", "add_rule", dids=mine, account="alice", locked=True) is None


def test_actions_juno_does_not_decide_fall_back_to_rucio() -> None:
    assert _decide("alice", "add_account") is None
    assert _decide("alice", "del_rule", rule_id="abc") is None  # without a session there is nothing to look up
    assert _decide("alice", "add_replicas", rse_id="x") is None


def test_importable_without_the_daemons() -> None:
    code = ("import sys, juno_rucio_policy, juno_rucio_policy.permission, juno_rucio_policy.paths, "
            "juno_rucio_policy.tape, juno_rucio_policy.scope; "
            "juno_rucio_policy.get_algorithms(); assert 'juno_dcs' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_client_loads_the_algorithms_without_rucios_server_side(tmp_path: Path) -> None:
    """The `rucio` CLI loads the algorithms to extract scopes: with a client's rucio.cfg, neither the token
    region's module nor the transfertool is imported (about 1 s of CPU per command)."""
    cfg = tmp_path / "client.cfg"
    cfg.write_text("[client]\nrucio_host = http://127.0.0.1:9\nauth_host = http://127.0.0.1:9\naccount = root\n"
                   "auth_type = userpass\n[policy]\npackage = juno_rucio_policy\n")
    code = ("import sys; from rucio.common.plugins import PolicyPackageAlgorithms; PolicyPackageAlgorithms(); "
            "print(PolicyPackageAlgorithms._supports('scope', 'juno'), 'rucio.core.oidc' in sys.modules, "
            "'rucio.transfertool.fts3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "RUCIO_CONFIG": str(cfg)},
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False", "False"]


def test_rucios_token_cache_gets_a_memory_backend_when_rucio_has_none(tmp_path: Path) -> None:
    """Where no memcached answers (a JUNO grid runs none), Rucio's token region is a null cache: once Rucio has
    loaded the policy package's algorithms, as its conveyor and reaper do before asking for tokens, tokens are
    kept in memory; Rucio's other regions stay as they were."""
    env = _rucio_cfg(tmp_path)
    # a daemon's configuration (its [database] makes Rucio take it for a server's), with a cache that does not answer
    Path(env["RUCIO_CONFIG"]).write_text(Path(env["RUCIO_CONFIG"]).read_text() + "[cache]\nurl = 127.0.0.1:9\n"
                                         "[database]\ndefault = sqlite://\n")
    code = """
from rucio.common.plugins import PolicyPackageAlgorithms
from rucio.core import oidc, rse
before = type(oidc.REGION.backend).__name__
PolicyPackageAlgorithms()
oidc.REGION.set("k", "token")
print(before, type(oidc.REGION.backend).__name__, oidc.REGION.get("k"), type(rse.REGION.backend).__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["NullBackend", "MemoryBackend", "token", "NullBackend"]


def test_the_transfertools_claims_are_kept_for_a_while_per_rse_and_scopes() -> None:
    from juno_rucio_policy.tokencache import remembered

    calls: list[tuple[str, tuple[str, ...]]] = []
    now = [100.0]

    def scope_for(rse_id: str, scopes: list[str], extra_scopes: list[str] | None = None) -> str:
        calls.append((rse_id, tuple(scopes)))
        return f"{rse_id}:{' '.join(scopes)}:{len(calls)}"

    kept = remembered(scope_for, ttl=60, clock=lambda: now[0])
    first = kept(rse_id="a", scopes=["storage.read"], extra_scopes=["offline_access"])
    assert kept(rse_id="a", scopes=["storage.read"], extra_scopes=["offline_access"]) == first  # lists: as tuples
    assert kept(rse_id="a", scopes=["storage.modify", "storage.read"]) != first  # other scopes, another answer
    assert kept(rse_id="b", scopes=["storage.read"], extra_scopes=["offline_access"]) != first
    assert len(calls) == 3
    now[0] += 61  # older than the TTL: asked again
    assert kept(rse_id="a", scopes=["storage.read"], extra_scopes=["offline_access"]) != first
    assert len(calls) == 4


def test_the_transfertools_claims_are_wrapped_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a module shaped as rucio.transfertool.fts3 (the real one needs a server's rucio.cfg to import; the
    transfer benchmark shows the effect on the real conveyor)."""
    import importlib
    import types

    from juno_rucio_policy import tokencache

    importlib.import_module("rucio.transfertool")  # the package; its fts3 module is replaced below

    fake = types.ModuleType("rucio.transfertool.fts3")
    fake.determine_audience_for_rse = lambda rse_id: f"host-of-{rse_id}"  # type: ignore[attr-defined]
    fake.determine_scope_for_rse = lambda rse_id, scopes, extra_scopes=None: "s"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rucio.transfertool.fts3", fake)
    monkeypatch.setattr(sys.modules["rucio.transfertool"], "fts3", fake, raising=False)
    assert tokencache.remember_rse_claims() is True
    wrapped = fake.determine_audience_for_rse  # type: ignore[attr-defined]
    assert getattr(wrapped, "__wrapped_by_juno__", False)
    assert wrapped(rse_id="x") == "host-of-x"
    assert tokencache.remember_rse_claims() is False
    assert fake.determine_audience_for_rse is wrapped  # type: ignore[attr-defined]
