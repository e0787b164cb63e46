"""The topology loader: the shipped file, derived views, and many bad files with their clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from juno_dcs.topology import TopologyError, load_topology, parse_size, parse_topology

SHIPPED = Path(__file__).resolve().parents[2] / "etc" / "topology.yaml"
TEXT = SHIPPED.read_text()


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    return text[:index].count("\n") + 1


def test_shipped_topology_has_the_juno_sites() -> None:
    topo = load_topology(SHIPPED)
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


def test_derived_attributes_and_expressions() -> None:
    topo = load_topology(SHIPPED)
    assert topo.rse_attributes("JINR_TAPE") == {"site": "JINR", "tier": 1, "country": "RU", "type": "TAPE"}
    assert topo.rse_type("JINR_TAPE") == "TAPE"
    assert topo.rses_where(tier=1, type="DISK") == ["CNAF_DISK", "IN2P3_DISK", "JINR_DISK", "MSU_DISK"]
    assert topo.rses_where(site="IHEP") == ["IHEP_DISK", "IHEP_TAPE"]


def test_distances_are_symmetric_and_complete() -> None:
    topo = load_topology(SHIPPED)
    for src in topo.rses:
        for dst in topo.rses:
            if src != dst:
                assert topo.distance(src, dst) == topo.distance(dst, src)
    assert topo.distance("IHEP_DISK", "IHEP_TAPE") == 1
    assert topo.distance("IHEP_DISK", "CNAF_DISK") == 4
    assert topo.distance("CNAF_DISK", "MSU_DISK") == topo.distances.default


def test_scopes_and_quotas() -> None:
    topo = load_topology(SHIPPED)
    scopes = topo.all_scopes()
    assert scopes["raw"] == "rawdata"
    assert scopes["user.alice"] == "alice"
    assert scopes["user.bob"] == "bob"
    assert "user.rawdata" not in scopes  # only USER accounts get a user scope
    quotas = topo.resolved_quotas()
    assert quotas["alice"]["IHEP_DISK"] == 2 * 10**12
    assert set(quotas["production"]) == set(topo.rses)  # "*" expanded
    assert quotas["rawdata"]["IN2P3_TAPE"] == 400 * 10**12


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (1024, 1024), ("1 kB", 1000), ("2 TiB", 2 * 2**40), ("1.5 TB", 1_500_000_000_000), ("7", 7),
     ("500GB", 500 * 10**9), ("3 pb", 3 * 10**15)],
)
def test_parse_size(value: int | str, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize(
    ("value", "phrase"),
    [(-1, "negative"), ("-3 TB", "negative"), ("12 parsecs", "unknown unit"), ("lots", "not a size"),
     (True, "not a size"), (1.5, "whole number"), ([1], "not a size"), ("", "not a size")],
)
def test_parse_size_refuses(value: object, phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase):
        parse_size(value)


# (name, edited text, field, line of the fault, phrase of the reason)
def _case(name: str, old: str, new: str, field: str, line_needle: str, phrase: str) -> tuple[str, str, str, int, str]:
    assert old in TEXT, old
    text = TEXT.replace(old, new, 1)
    return name, text, field, _line_of(text, line_needle), phrase


BAD = [
    _case("unknown top-level key", "version: 1\n", "version: 1\ncolour: blue\n", "colour", "colour:",
          "unknown key 'colour'"),
    _case("unknown nested key", "MSU_DISK:   {site: MSU,   type: DISK}", "MSU_DISK:   {site: MSU, type: DISK, size: 3}",
          "rses.MSU_DISK.size", "MSU_DISK:", "unknown key 'size'"),
    _case("duplicate RSE", "  MSU_DISK:   {site: MSU,   type: DISK}\n",
          "  MSU_DISK:   {site: MSU,   type: DISK}\n  CNAF_DISK:  {site: CNAF,  type: DISK}\n",
          "rses.CNAF_DISK", "  CNAF_DISK:  {site: CNAF,  type: DISK}\n\n", "duplicate key 'CNAF_DISK' (first at line"),
    _case("duplicate site", "  SYSU-CLUSTER:\n", "  MSU:\n", "sites.MSU", "  MSU:\n    tier: 2", "duplicate key 'MSU'"),
    _case("RSE without site", "MSU_DISK:   {site: MSU,   type: DISK}", "MSU_DISK:   {type: DISK}",
          "rses.MSU_DISK.site", "MSU_DISK:", "missing required key 'site'"),
    _case("RSE at an unknown site", "MSU_DISK:   {site: MSU,", "MSU_DISK:   {site: MSX,", "rses.MSU_DISK.site",
          "MSU_DISK:", "unknown site 'MSX'"),
    _case("negative quota", "    MSU_DISK: 1 TB\n", "    MSU_DISK: -1 TB\n", "quotas.bob.MSU_DISK",
          "    MSU_DISK: -1 TB", "bad quota"),
    _case("quota with an unknown unit", "    MSU_DISK: 1 TB\n", "    MSU_DISK: 1 parsec\n", "quotas.bob.MSU_DISK",
          "    MSU_DISK: 1 parsec", "unknown unit 'parsec'"),
    _case("quota that is not a size", "    MSU_DISK: 1 TB\n", "    MSU_DISK: plenty\n", "quotas.bob.MSU_DISK",
          "    MSU_DISK: plenty", "not a size"),
    _case("quota at an unknown RSE", "    MSU_DISK: 1 TB\n", "    MSU_TAPE: 1 TB\n", "quotas.bob.MSU_TAPE",
          "    MSU_TAPE: 1 TB", "unknown RSE 'MSU_TAPE'"),
    _case("quota of an unknown account", "  bob:\n    IHEP_DISK: 2 TB", "  carol:\n    IHEP_DISK: 2 TB",
          "quotas.carol", "  carol:", "unknown account 'carol'"),
    _case("tier out of range", "    tier: 2\n    country: CN", "    tier: 5\n    country: CN",
          "sites.SYSU-CLUSTER.tier", "    tier: 5", "less than or equal to 2"),
    _case("bad country", "    country: FR", "    country: France", "sites.IN2P3.country", "country: France",
          "does not match"),
    _case("bad RSE name", "  MSU_DISK:   {site: MSU,", "  msu-disk:   {site: MSU,", "rses.msu-disk",
          "  msu-disk:", "RSE name 'msu-disk' must match"),
    _case("bad RSE type", "MSU_DISK:   {site: MSU,   type: DISK}", "MSU_DISK:   {site: MSU,   type: SSD}",
          "rses.MSU_DISK.type", "MSU_DISK:", "'SSD' is not allowed"),
    _case("reserved attribute", "MSU_DISK:   {site: MSU,   type: DISK}",
          "MSU_DISK:   {site: MSU,   type: DISK, attributes: {tier: 0}}", "rses.MSU_DISK.attributes",
          "MSU_DISK:", "attribute 'tier' is set from the site"),
    _case("distance to an unknown site", "    JINR MSU: 2\n", "    JINR MOON: 2\n", "distances.sites.JINR MOON",
          "    JINR MOON: 2", "unknown site 'MOON'"),
    _case("distance pair given twice", "    JINR MSU: 2\n", "    JINR MSU: 2\n    MSU JINR: 3\n",
          "distances.sites.MSU JINR", "    MSU JINR: 3", "given twice"),
    _case("negative distance", "    JINR MSU: 2\n", "    JINR MSU: -2\n", "distances.sites.JINR MSU",
          "    JINR MSU: -2", "greater than or equal to 0"),
    _case("scope of an unknown account", "  calib: production\n", "  calib: calibration\n", "scopes.calib",
          "  calib: calibration", "unknown account 'calibration'"),
    _case("missing root account", "  root:\n    type: SERVICE\n    email: root@juno.example.org\n", "",
          "accounts", "accounts:", "missing required account 'root'"),
    _case("bad account type", "  bob:\n    type: USER", "  bob:\n    type: HUMAN", "accounts.bob.type",
          "    type: HUMAN", "'HUMAN' is not allowed"),
    _case("bad email", "    email: bob@juno.example.org", "    email: bob", "accounts.bob.email", "    email: bob\n",
          "does not match"),
    _case("wrong version", "version: 1\n", "version: 2\n", "version", "version: 2", "expected 1"),
    _case("missing section", "distances:\n  same_site: 1\n", "far:\n  same_site: 1\n", "distances", "version:",
          "missing required key 'distances'"),
    _case("slots of the wrong type", "slots: {cores: 8, memory_per_core_gb: 16,",
          "slots: {cores: many, memory_per_core_gb: 16,", "sites.JINR.slots.cores", "cores: many", "valid integer"),
]


@pytest.mark.parametrize(("name", "text", "field", "line", "phrase"), BAD, ids=[c[0] for c in BAD])
def test_bad_topology_is_refused_with_field_line_and_reason(
    name: str, text: str, field: str, line: int, phrase: str
) -> None:
    with pytest.raises(TopologyError) as info:
        parse_topology(text, "topology.yaml")
    problems = info.value.problems
    matching = [p for p in problems if p.field == field]
    assert matching, f"{name}: no problem at {field}; got:\n{info.value}"
    assert any(p.line == line and phrase in p.reason for p in matching), f"{name}: got\n{info.value}"
    assert f"topology.yaml:{line}: {field}: " in str(info.value)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("sites: [\n", "not valid YAML"),
        ("sites:\n  IHEP: {tier: 0\n", "not valid YAML"),
        ("version: 1\n\tsites: {}\n", "not valid YAML"),
    ],
)
def test_unreadable_files(text: str, phrase: str) -> None:
    with pytest.raises(TopologyError, match=phrase):
        parse_topology(text, "t.yaml")


def test_several_problems_are_reported_together() -> None:
    text = TEXT.replace("    MSU_DISK: 1 TB\n", "    MSU_DISK: 1 parsec\n")
    text = text.replace("  calib: production", "  calib: nobody")
    with pytest.raises(TopologyError) as info:
        parse_topology(text, "t.yaml")
    fields = {p.field for p in info.value.problems}
    assert {"quotas.bob.MSU_DISK", "scopes.calib"} <= fields


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"nothere\.yaml: cannot read the topology"):
        load_topology(tmp_path / "nothere.yaml")
