"""The topology loader: the shipped file, derived views, and many bad files with their clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from juno_dcs.errors import ConfigError
from juno_dcs.packaged import data_file
from juno_dcs.topology import Topology, TopologyError, load_topology, parse_size, parse_topology

SHIPPED = data_file("topology.yaml")
TEXT = SHIPPED.read_text(encoding="utf-8")
KNOWN_SITES = "CNAF, IHEP, IN2P3, INFN-CLOUD, JINR, MSU, SYSU-CLUSTER"


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    return text[:index].count("\n") + 1


@pytest.fixture(scope="module")
def topo() -> Topology:
    return load_topology(SHIPPED)


# --- the shipped file


def test_shipped_topology_has_the_juno_sites(topo: Topology) -> None:
    assert {"IHEP", "CNAF", "JINR", "IN2P3", "MSU"} <= set(topo.sites)
    assert topo.sites["IHEP"].tier == 0
    assert all(topo.sites[s].tier == 1 for s in ("CNAF", "JINR", "IN2P3", "MSU"))
    small = [s for s in topo.sites.values() if s.tier == 2]
    assert len(small) >= 2
    assert all(2.5 <= s.slots.memory_per_core_gb <= 4 for s in small)
    assert topo.sites["JINR"].slots.memory_per_core_gb == 16
    assert set(topo.rses) == {
        "IHEP_DISK", "IHEP_TAPE", "CNAF_DISK", "CNAF_TAPE", "JINR_DISK", "JINR_TAPE", "IN2P3_DISK", "IN2P3_TAPE",
        "MSU_DISK",
    }
    assert {"root", "rawdata", "production", "alice", "bob"} <= set(topo.accounts)
    assert {"raw", "mc", "rec", "calib"} <= set(topo.scopes)


def test_sites_publish_their_releases(topo: Topology) -> None:
    releases = topo.releases()
    assert releases["J25.1.0"] == sorted(topo.sites)  # the production release is everywhere
    assert releases["J20v1r0-Pre2"] == ["CNAF", "IHEP", "IN2P3", "JINR"]  # JSUB's examples' release
    assert "J24.1.0" in topo.sites["MSU"].releases


def test_derived_attributes_and_expressions(topo: Topology) -> None:
    assert topo.rse_attributes("JINR_TAPE") == {"site": "JINR", "tier": 1, "country": "RU", "type": "TAPE"}
    assert topo.rse_type("JINR_TAPE") == "TAPE"
    assert topo.rse_type("MSU_DISK") == "DISK"
    assert topo.rses_where(tier=1, type="DISK") == ["CNAF_DISK", "IN2P3_DISK", "JINR_DISK", "MSU_DISK"]
    assert topo.rses_where(site="IHEP") == ["IHEP_DISK", "IHEP_TAPE"]
    assert topo.rses_where(type="TAPE", country="RU") == ["JINR_TAPE"]


def test_distances_are_symmetric_and_defined_for_all_pairs(topo: Topology) -> None:
    for src in topo.rses:
        for dst in topo.rses:
            assert isinstance(topo.distance(src, dst), int)
            assert topo.distance(src, dst) >= 0
            assert topo.distance(src, dst) == topo.distance(dst, src)
    assert topo.distance("IHEP_DISK", "IHEP_TAPE") == topo.distances.same_site == 1
    assert topo.distance("IHEP_DISK", "CNAF_DISK") == 4
    assert topo.distance("MSU_DISK", "JINR_TAPE") == 2  # listed as "JINR MSU"
    assert topo.distance("CNAF_DISK", "MSU_DISK") == topo.distances.default


def test_scopes_and_quotas(topo: Topology) -> None:
    scopes = topo.all_scopes()
    assert scopes["raw"] == "rawdata"
    assert scopes["mc"] == "production"
    assert scopes["user.alice"] == "alice"
    assert scopes["user.bob"] == "bob"
    assert "user.rawdata" not in scopes  # only USER accounts get a user scope
    quotas = topo.resolved_quotas()
    assert quotas["alice"]["IHEP_DISK"] == 2 * 10**12
    assert set(quotas["production"]) == set(topo.rses)  # "*" expanded
    assert set(quotas["root"].values()) == {10**15}
    assert quotas["rawdata"]["IN2P3_TAPE"] == 400 * 10**12
    assert "MSU_DISK" not in quotas["rawdata"]


def test_star_quota_leaves_named_rses_alone() -> None:
    text = TEXT.replace('  production:\n    "*": 50 TB\n', '  production:\n    "*": 50 TB\n    IHEP_TAPE: 2 PiB\n')
    quotas = parse_topology(text).resolved_quotas()["production"]
    assert quotas["IHEP_TAPE"] == 2 * 2**50
    assert quotas["MSU_DISK"] == 50 * 10**12


def test_explicit_user_scope_owned_by_its_user_is_accepted() -> None:
    text = TEXT.replace("  calib: production\n", "  calib: production\n  user.alice: alice\n")
    assert parse_topology(text).all_scopes()["user.alice"] == "alice"


def test_yaml_anchors_and_merge_keys_are_understood() -> None:
    text = TEXT.replace("slots: {cores: 12, memory_per_core_gb: 3, walltime_hours: 72}",
                        "slots: &t1 {cores: 12, memory_per_core_gb: 3, walltime_hours: 72}", 1)
    text = text.replace("slots: {cores: 8, memory_per_core_gb: 16, walltime_hours: 96}",
                        "slots: {<<: *t1, cores: 8, memory_per_core_gb: 16}")
    jinr = parse_topology(text).sites["JINR"].slots
    assert (jinr.cores, jinr.memory_per_core_gb, jinr.walltime_hours) == (8, 16, 72)


def test_models_check_cross_references_without_the_loader(topo: Topology) -> None:
    data = topo.model_dump()
    data["rses"]["MSU_DISK"]["site"] = "MOON"
    with pytest.raises(ValidationError, match="unknown site 'MOON'"):
        Topology.model_validate(data)


def test_topology_is_frozen(topo: Topology) -> None:
    with pytest.raises(ValidationError, match="frozen"):
        topo.version = 2


# --- sizes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0), (1024, 1024), ("0", 0), ("7", 7), ("1 B", 1), ("1 kB", 1000), ("1 KB", 1000), ("1kB", 1000),
        ("500GB", 500 * 10**9), ("1.5 TB", 1_500_000_000_000), ("3 PB", 3 * 10**15), ("1 KiB", 1024),
        ("0.5 KiB", 512), ("4 MiB", 4 * 2**20), ("2 TiB", 2 * 2**40), ("1 PiB", 2**50), ("  10 MB ", 10**7),
    ],
)
def test_parse_size(value: int | str, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        (-1, "cannot be negative"), ("-3 TB", "cannot be negative"), ("12 parsecs", "unknown unit 'parsecs'"),
        ("1 tb", "did you mean 'TB'"), ("2 gib", "did you mean 'GiB'"), ("lots", "not a size"), ("", "not a size"),
        ("1,5 TB", "not a size"), ("1e3 GB", "not a size"), ("TB", "not a size"), ("1.5", "not a whole number"),
        ("0.1 B", "not a whole number"), (True, "not true/false"), (False, "not true/false"), (1.5, "not a float"),
        (None, "not a NoneType"), ([1], "not a list"),
    ],
)
def test_parse_size_refuses(value: Any, phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase):
        parse_size(value)


# --- bad files: (edited shipped text, field, line, phrase of the reason, number of problems)


def _case(name: str, old: str, new: str, field: str, needle: str | tuple[str, int], phrase: str,
          count: int = 1) -> Any:
    assert TEXT.count(old) >= 1, old
    text = TEXT.replace(old, new, 1)
    line = _line_of(text, *needle) if isinstance(needle, tuple) else _line_of(text, needle)
    return pytest.param(text, field, line, phrase, count, id=name)


MSU_DISK = "MSU_DISK:   {site: MSU,   type: DISK}"
MSU_RELEASES = "    releases: [J24.1.0, J25.1.0]\n  SYSU"
BOB_MSU = "    MSU_DISK: 1 TB\n"
SCOPES = "scopes:\n  raw: rawdata\n  mc: production\n  rec: production\n  calib: production\n  group.solar: solar\n"

BAD = [
    _case("unknown top-level key", "version: 1\n", "version: 1\ncolour: blue\n", "colour", "colour:",
          "unknown key 'colour' (allowed: version, sites, rses, distances, accounts, scopes, quotas)"),
    _case("unknown key in a site", "    country: CN\n    description: Institute",
          "    country: CN\n    colour: red\n    description: Institute", "sites.IHEP.colour", "colour:",
          "unknown key 'colour' (allowed: tier, country, description, slots, online, releases)"),
    _case("unknown key in an RSE", MSU_DISK, "MSU_DISK:   {site: MSU, type: DISK, size: 3}", "rses.MSU_DISK.size",
          "MSU_DISK:", "unknown key 'size'"),
    _case("unknown key in slots", "walltime_hours: 96}", "walltime_hours: 96, gpus: 2}", "sites.JINR.slots.gpus",
          "gpus", "unknown key 'gpus' (allowed: cores, memory_per_core_gb, walltime_hours)"),
    _case("unknown key in an account", "    email: bob@juno.example.org\n",
          "    email: bob@juno.example.org\n    phone: 123\n", "accounts.bob.phone", "phone:", "unknown key 'phone'"),
    _case("duplicate RSE", f"  {MSU_DISK}\n", f"  {MSU_DISK}\n  CNAF_DISK:  {{site: CNAF,  type: DISK}}\n",
          "rses.CNAF_DISK", ("  CNAF_DISK:", 2),
          f"duplicate key 'CNAF_DISK' (first at line {_line_of(TEXT, 'CNAF_DISK')})"),
    _case("duplicate site", "  SYSU-CLUSTER:\n", "  MSU:\n", "sites.MSU", ("  MSU:\n", 2),
          f"duplicate key 'MSU' (first at line {_line_of(TEXT, '  MSU:')})"),
    _case("duplicate quota", BOB_MSU, BOB_MSU + "    MSU_DISK: 2 TB\n", "quotas.bob.MSU_DISK", "MSU_DISK: 2 TB",
          "duplicate key 'MSU_DISK'"),
    _case("duplicate key in a flow mapping", MSU_DISK, "MSU_DISK:   {site: MSU, type: DISK, type: TAPE}",
          "rses.MSU_DISK.type", "MSU_DISK:", "duplicate key 'type'"),
    _case("RSE without site", MSU_DISK, "MSU_DISK:   {type: DISK}", "rses.MSU_DISK.site", "MSU_DISK:",
          "missing required key 'site'"),
    _case("block RSE without site", f"  {MSU_DISK}\n", "  MSU_DISK:\n    type: DISK\n", "rses.MSU_DISK.site",
          "  MSU_DISK:\n", "missing required key 'site'"),
    _case("RSE at an unknown site", "IHEP_DISK:  {site: IHEP,", "IHEP_DISK:  {site: IHPE,", "rses.IHEP_DISK.site",
          "IHEP_DISK:", f"unknown site 'IHPE' (known sites: {KNOWN_SITES})"),
    _case("negative quota", BOB_MSU, "    MSU_DISK: -1 TB\n", "quotas.bob.MSU_DISK", "MSU_DISK: -1",
          "bad quota '-1 TB': a size cannot be negative"),
    _case("negative quota in bytes", BOB_MSU, "    MSU_DISK: -5\n", "quotas.bob.MSU_DISK", "MSU_DISK: -5",
          "bad quota -5: a size cannot be negative"),
    _case("quota with an unknown unit", BOB_MSU, "    MSU_DISK: 12 parsecs\n", "quotas.bob.MSU_DISK", "parsecs",
          "bad quota '12 parsecs': unknown unit 'parsecs'"),
    _case("quota unit in the wrong case", BOB_MSU, "    MSU_DISK: 1 tb\n", "quotas.bob.MSU_DISK", "1 tb",
          "did you mean 'TB'?"),
    _case("quota that is not a size", BOB_MSU, "    MSU_DISK: plenty\n", "quotas.bob.MSU_DISK", "plenty",
          "bad quota 'plenty': not a size"),
    _case("quota that is a float", BOB_MSU, "    MSU_DISK: 1.5\n", "quotas.bob.MSU_DISK", "1.5", "bad quota 1.5"),
    _case("star quota that is bad", '"*": 50 TB', '"*": lots', "quotas.production.*", '"*": lots', "bad quota 'lots'"),
    _case("quota at an unknown RSE", BOB_MSU, "    MSU_TAPE: 1 TB\n", "quotas.bob.MSU_TAPE", "MSU_TAPE",
          "unknown RSE 'MSU_TAPE' (known RSEs: CNAF_DISK,"),
    _case("quota of an unknown account", "quotas:\n", "quotas:\n  carol:\n    IHEP_DISK: 1 TB\n", "quotas.carol",
          "carol:", "unknown account 'carol' (known accounts: alice, bob, dave, production, rawdata, root, solar)"),
    _case("tier too high", "    tier: 2\n    country: CN", "    tier: 5\n    country: CN", "sites.SYSU-CLUSTER.tier",
          "tier: 5", "must be at most 2, got 5"),
    _case("negative tier", "    tier: 2\n    country: CN", "    tier: -1\n    country: CN",
          "sites.SYSU-CLUSTER.tier", "tier: -1", "must be at least 0, got -1"),
    _case("tier as text", "    tier: 2\n    country: CN", "    tier: two\n    country: CN", "sites.SYSU-CLUSTER.tier",
          "tier: two", "expected a whole number, got 'two'"),
    _case("bad country", "    country: FR", "    country: France", "sites.IN2P3.country", "France",
          "country 'France' must be an ISO 3166 alpha-2 code"),
    _case("lower-case country", "    country: FR", "    country: fr", "sites.IN2P3.country", "country: fr",
          "country 'fr' must be an ISO 3166 alpha-2 code"),
    _case("country that YAML reads as false", "    country: FR", "    country: NO", "sites.IN2P3.country",
          "country: NO", "YAML reads the unquoted NO as false"),
    _case("description that is a number", "Moscow State University", "2024", "sites.MSU.description", "2024",
          "expected text, got 2024"),
    _case("zero cores", "slots: {cores: 8, memory_per_core_gb: 16,", "slots: {cores: 0, memory_per_core_gb: 16,",
          "sites.JINR.slots.cores", "cores: 0", "must be greater than 0, got 0"),
    _case("cores that are not a number", "slots: {cores: 8, memory_per_core_gb: 16,",
          "slots: {cores: many, memory_per_core_gb: 16,", "sites.JINR.slots.cores", "cores: many",
          "expected a whole number, got 'many'"),
    _case("site without slots", "    slots: {cores: 8, memory_per_core_gb: 3, walltime_hours: 48}\n", "",
          "sites.MSU.slots", "  MSU:", "missing required key 'slots'"),
    _case("bad release name", MSU_RELEASES, "    releases: [J24.1.0, 'J25 1']\n  SYSU",
          "sites.MSU.releases.1", "'J25 1'", "release name 'J25 1' must match ^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"),
    _case("release listed twice", MSU_RELEASES, "    releases: [J24.1.0, J24.1.0]\n  SYSU",
          "sites.MSU.releases", "[J24.1.0, J24.1.0]", "listed more than once: J24.1.0"),
    _case("releases that are text", MSU_RELEASES, "    releases: J24.1.0\n  SYSU",
          "sites.MSU.releases", "releases: J24.1.0\n  SYSU", "expected a list"),
    _case("bad site name", "  INFN-CLOUD:\n", "  infn-cloud:\n", "sites.infn-cloud", "infn-cloud:",
          "site name 'infn-cloud' must match ^[A-Z0-9][A-Z0-9_-]*$"),
    _case("bad RSE name", f"  {MSU_DISK}\n", f"  {MSU_DISK}\n  msu-tape:   {{site: MSU, type: TAPE}}\n",
          "rses.msu-tape", "msu-tape:", "RSE name 'msu-tape' must match ^[A-Z0-9_-]+$"),
    _case("bad RSE type", MSU_DISK, "MSU_DISK:   {site: MSU,   type: SSD}", "rses.MSU_DISK.type", "MSU_DISK:",
          "'SSD' is not allowed (expected 'DISK' or 'TAPE')"),
    _case("reserved attribute", MSU_DISK, "MSU_DISK:   {site: MSU, type: DISK, attributes: {tier: 0}}",
          "rses.MSU_DISK.attributes.tier", "MSU_DISK:", "attribute 'tier' is reserved"),
    _case("reserved rse_type attribute", MSU_DISK, "MSU_DISK:   {site: MSU, type: DISK, attributes: {rse_type: TAPE}}",
          "rses.MSU_DISK.attributes.rse_type", "MSU_DISK:", "attribute 'rse_type' is reserved"),
    _case("bad attribute name", MSU_DISK, "MSU_DISK:   {site: MSU, type: DISK, attributes: {'a b': 1}}",
          "rses.MSU_DISK.attributes.a b", "MSU_DISK:", "attribute name 'a b' must match"),
    _case("bad attribute value", MSU_DISK, "MSU_DISK:   {site: MSU, type: DISK, attributes: {fast: [1]}}",
          "rses.MSU_DISK.attributes.fast", "MSU_DISK:", "expected text, a whole number or true/false, got a list"),
    _case("volatile that is not a boolean", MSU_DISK, "MSU_DISK:   {site: MSU, type: DISK, volatile: maybe}",
          "rses.MSU_DISK.volatile", "MSU_DISK:", "expected true/false, got 'maybe'"),
    _case("distance to an unknown site", "    JINR MSU: 2\n", "    JINR MOON: 2\n", "distances.sites.JINR MOON",
          "JINR MOON", f"unknown site 'MOON' (known sites: {KNOWN_SITES})"),
    _case("distance pair given twice", "    JINR MSU: 2\n", "    JINR MSU: 2\n    MSU JINR: 3\n",
          "distances.sites.MSU JINR", "MSU JINR", "the pair is given twice (also as 'JINR MSU')"),
    _case("distance of a site to itself", "    JINR MSU: 2\n", "    JINR MSU: 2\n    MSU MSU: 0\n",
          "distances.sites.MSU MSU", "MSU MSU", "distance to itself is distances.same_site"),
    _case("distance key that is not a pair", "    JINR MSU: 2\n", "    JINR-MSU: 2\n", "distances.sites.JINR-MSU",
          "JINR-MSU", "must be two site names separated by a space"),
    _case("negative distance", "    JINR MSU: 2\n", "    JINR MSU: -2\n", "distances.sites.JINR MSU", "JINR MSU",
          "must be at least 0, got -2"),
    _case("negative same_site", "  same_site: 1\n", "  same_site: -1\n", "distances.same_site", "same_site: -1",
          "must be at least 0"),
    _case("scope of an unknown account", "  calib: production\n", "  calib: calibration\n", "scopes.calib",
          "calib: calibration", "unknown account 'calibration' (known accounts: alice, bob,"),
    _case("bad scope name", "  calib: production\n", "  cal/ib: production\n", "scopes.cal/ib", "cal/ib",
          "scope name 'cal/ib' must match"),
    _case("user scope owned by someone else", "  calib: production\n", "  calib: production\n  user.alice: bob\n",
          "scopes.user.alice", "user.alice", "the scope of USER account 'alice' must be owned by it, not by 'bob'"),
    _case("missing root account", "  root:\n    type: SERVICE\n    email: root@juno.example.org\n", "",
          "accounts", "accounts:", "missing required account 'root'", count=2),  # and quotas.root
    _case("bad account type", "  bob:\n    type: USER", "  bob:\n    type: HUMAN", "accounts.bob.type", "HUMAN",
          "'HUMAN' is not allowed (expected 'USER', 'SERVICE' or 'GROUP')"),
    _case("email without domain", "    email: bob@juno.example.org", "    email: bob", "accounts.bob.email",
          "email: bob\n", "email 'bob' must be one address of the form name@domain"),
    _case("email with two @", "    email: bob@juno.example.org", "    email: bob@a@b", "accounts.bob.email",
          "bob@a@b", "must be one address"),
    _case("bad account name", "accounts:\n", "accounts:\n  Carol:\n    type: USER\n    email: c@x.org\n",
          "accounts.Carol", "Carol:", "account name 'Carol' must match ^[a-z0-9_-]{1,25}$"),
    _case("USER name too long for its scope", "accounts:\n",
          "accounts:\n  carol-with-a-long-name:\n    type: USER\n    email: c@x.org\n",
          "accounts.carol-with-a-long-name", "carol-with", "at most 20 characters"),
    _case("wrong version", "version: 1\n", "version: 2\n", "version", "version: 2",
          "unsupported version 2: this loader reads version 1"),
    _case("version as text", "version: 1\n", "version: '1'\n", "version", "version:", "expected a whole number"),
    _case("missing section", "distances:\n  same_site: 1\n", "far:\n  same_site: 1\n", "distances", "version:",
          "missing required key 'distances'", count=2),  # and the unknown key 'far'
    _case("scope that is not a JUNO scope", "  calib: production\n", "  calib: production\n  physics: production\n",
          "scopes.physics", "physics:", "scope 'physics' is not a JUNO scope: use raw, mc, rec, calib"),
    _case("section that is a list", SCOPES, "scopes: [raw, mc, rec, calib]\n", "scopes", "scopes: [",
          "expected a mapping, got a list"),
    _case("key that is not a name", "scopes:\n", "scopes:\n  2024: production\n", "scopes", "2024:",
          "key '2024' is not a name: YAML reads it as int 2024; quote it"),
    _case("unknown YAML tag", "version: 1\n", "version: !big 1\n", "version", "version:",
          "unsupported YAML tag '!big'"),
]


@pytest.mark.parametrize(("text", "field", "line", "phrase", "count"), BAD)
def test_bad_topology_is_refused_with_field_line_and_reason(
    text: str, field: str, line: int, phrase: str, count: int
) -> None:
    with pytest.raises(TopologyError) as info:
        parse_topology(text, "etc/topology.yaml")
    problems = info.value.problems
    matching = [p for p in problems if p.field == field]
    assert len(matching) == 1, f"no single problem at {field}; got:\n{info.value}"
    assert matching[0].line == line, str(info.value)
    assert phrase in matching[0].reason, str(info.value)
    assert len(problems) == count, str(info.value)
    assert f"etc/topology.yaml:{line}: {field}: {matching[0].reason}" in str(info.value).splitlines()


def test_error_message_format() -> None:
    text = TEXT.replace("IHEP_DISK:  {site: IHEP,", "IHEP_DISK:  {site: IHPE,")
    with pytest.raises(TopologyError) as info:
        parse_topology(text, "etc/topology.yaml")
    assert isinstance(info.value, ConfigError)  # in the project's tree: exit 2 at a command line, 400 in a route
    line = _line_of(TEXT, "IHEP_DISK:")
    assert str(info.value) == (
        f"etc/topology.yaml:{line}: rses.IHEP_DISK.site: unknown site 'IHPE' (known sites: {KNOWN_SITES})"
    )
    (problem,) = info.value.problems
    assert (problem.source, problem.line, problem.field) == ("etc/topology.yaml", line, "rses.IHEP_DISK.site")


def test_several_problems_are_reported_together_in_line_order() -> None:
    text = TEXT.replace("    tier: 2\n    country: CN", "    tier: 5\n    country: CN")  # a field
    text = text.replace("{site: MSU,", "{site: MSX,")  # a cross reference, found despite the field problem
    text = text.replace(BOB_MSU, "    MSU_DISK: 12 parsecs\n")  # a quota
    text = text.replace("  calib: production\n", "  calib: nobody\n  raw: rawdata\n")  # an owner and a duplicate
    text = text.replace("version: 1\n", "version: 1\ncolour: blue\n")  # an unknown key
    with pytest.raises(TopologyError) as info:
        parse_topology(text, "t.yaml")
    problems = info.value.problems
    assert [p.field for p in problems] == [
        "colour", "sites.SYSU-CLUSTER.tier", "rses.MSU_DISK.site", "scopes.calib", "scopes.raw", "quotas.bob.MSU_DISK",
    ]
    assert [p.line for p in problems] == sorted(p.line for p in problems)
    assert len(str(info.value).splitlines()) == len(problems)


@pytest.mark.parametrize(
    ("text", "line", "phrase"),
    [
        ("", 0, "the file is empty"),
        ("# only a comment\n", 0, "the file is empty"),
        ("- a\n- b\n", 1, "the top level must be a mapping of sections (version, sites, rses, ...), not a list"),
        ("just words\n", 1, "not the value 'just words'"),
        ("sites: [\n", 2, "not valid YAML"),
        ("version: 1\nsites:\n  IHEP: {tier: 0\n", 4, "not valid YAML: expected ',' or '}'"),
        ("version: 1\n\tsites: {}\n", 2, "not valid YAML"),
        ("version: 1\nsites: a: b\n", 2, "mapping values are not allowed here"),
        ("version: 1\n---\nversion: 1\n", 2, "expected a single document"),
        ("a: &x [*x]\n", 1, "an alias refers to a value that contains it"),
    ],
)
def test_unreadable_files(text: str, line: int, phrase: str) -> None:
    with pytest.raises(TopologyError) as info:
        parse_topology(text, "t.yaml")
    assert any(p.line == line and phrase in p.reason for p in info.value.problems), str(info.value)


def test_yaml_syntax_error_in_the_shipped_file_gives_its_line() -> None:
    text = TEXT.replace("    slots: {cores: 8, memory_per_core_gb: 3, walltime_hours: 48}",
                        "    slots: {cores: 8, memory_per_core_gb: 3, walltime_hours: 48")
    with pytest.raises(TopologyError) as info:
        parse_topology(text, "etc/topology.yaml")
    (problem,) = info.value.problems
    assert problem.field == ""
    assert "not valid YAML" in problem.reason
    assert f"at line {_line_of(text, 'walltime_hours: 48')}" in problem.reason


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"nothere\.yaml: cannot read the topology: no such file"):
        load_topology(tmp_path / "nothere.yaml")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="it is a directory"):
        load_topology(str(tmp_path))


def test_load_names_the_file_in_problems(tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(TEXT.replace("version: 1\n", "version: 3\n"), encoding="utf-8")
    with pytest.raises(TopologyError, match=rf"^{path}:6: version: unsupported version 3"):
        load_topology(path)
