"""The policy files: the shipped ones are valid; each kind of mistake gives its file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from juno_dcs.cli import main
from juno_dcs.packaged import data_file
from juno_dcs.placement import PolicyError, advice, check, load_policies
from juno_dcs.topology import Problem, Topology, load_topology

CHECKOUT = Path(__file__).resolve().parents[2]
POLICY_DIR = data_file("placement")
TOPOLOGY = data_file("topology.yaml")
SHIPPED = {kind: (POLICY_DIR / f"{kind}.yaml").read_text(encoding="utf-8") for kind in ("raw", "production", "user")}


@pytest.fixture(scope="module")
def topo() -> Topology:
    return load_topology(TOPOLOGY)


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    return text[:index].count("\n") + 1


def _write(directory: Path, texts: dict[str, str | None]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for kind, text in texts.items():
        if text is not None:
            (directory / f"{kind}.yaml").write_text(text, encoding="utf-8")
    return directory


def _problems(directory: Path, topo: Topology) -> list[Problem]:
    try:
        policies = load_policies(directory)
    except PolicyError as exc:
        return exc.problems
    return check(policies, topo)


def _replace(text: str, old: str, new: str, occurrence: int = 1) -> str:
    index = -1
    for _ in range(occurrence):
        index = text.index(old, index + 1)
    return text[:index] + new + text[index + len(old):]


def test_shipped_policy_is_valid(topo: Topology) -> None:
    policies = load_policies(POLICY_DIR)
    assert check(policies, topo) == []
    assert advice(policies, topo) == []
    assert policies.raw.account == "rawdata"
    assert policies.production.account == "production"
    assert [t.name for t in policies.raw.rules] == [
        "ihep-disk", "ihep-tape", "cnaf-disk", "cnaf-tape", "jinr-disk", "jinr-tape", "in2p3-disk", "in2p3-tape"]
    assert policies.raw.lifetime_of(policies.raw.rules[2]) == 90 * 86400
    assert set(policies.production.data_types) == {"mc.detsim", "mc.elecsim", "mc.cal", "mc.rec", "rec", "log"}
    assert policies.user.quota == 10**12


# (file, old text, new text, occurrence of old, needle for the expected line (in the new text) or None for
# line 0, field, reason substring)
MISTAKES = [
    pytest.param("raw", "  - name: ihep-disk\n", "  - name: ihep-disk\n    colour: red\n", 1, "colour: red",
                 "rules.0.colour", "unknown key 'colour' (allowed: name, rse_expression", id="unknown-key"),
    pytest.param("raw", "    lifetime: t1_disk\n", "    lifetime: t1_disk\n    lifetime: 3 days\n", 1,
                 "lifetime: 3 days", "rules.2.lifetime", "duplicate key 'lifetime' (first at line", id="duplicate-key"),
    pytest.param("raw", "  - name: ihep-disk\n    rse_expression: IHEP_DISK\n    activity: Raw Export\n",
                 "  - name: ihep-disk\n    rse_expression: IHEP_DISK\n", 1, "name: ihep-disk", "rules.0.activity",
                 "missing required key 'activity'", id="missing-key"),
    pytest.param("raw", "t1_disk: 90 days", "t1_disk: 90 dayz", 1, "t1_disk: 90 dayz", "lifetimes.t1_disk",
                 "unknown unit 'dayz'", id="bad-duration"),
    pytest.param("raw", "lifetime: t1_disk", "lifetime: -3 days", 1, "lifetime: -3 days", "rules.2.lifetime",
                 "bad duration '-3 days'", id="negative-duration"),
    pytest.param("raw", "lifetime: t1_disk", "lifetime: t2_disk", 1, "lifetime: t2_disk", "rules.2.lifetime",
                 "unknown lifetime 't2_disk'", id="unknown-lifetime-name"),
    pytest.param("user", "quota: 1 TB", "quota: 1 TBB", 1, "quota: 1 TBB", "quota", "bad size '1 TBB'",
                 id="bad-size"),
    pytest.param("raw", "activity: Raw Export", "activity: Raw Exports", 1, "Raw Exports", "rules.0.activity",
                 "unknown activity 'Raw Exports' (JUNO's: Raw Export", id="unknown-activity"),
    pytest.param("production", "  mc.cal:     {lifetime: 365 days}",
                 "  mc.cal:     {lifetime: 365 days, activity: Reprocessing}", 1, "Reprocessing",
                 "data_types.mc.cal.activity",
                 "unknown activity 'Reprocessing'", id="unknown-activity-production"),
    pytest.param("raw", "rse_expression: CNAF_DISK", "rse_expression: CNAF_DSK", 1, "CNAF_DSK",
                 "rules.2.rse_expression", "unknown RSE or attribute 'CNAF_DSK' in expression 'CNAF_DSK'",
                 id="unknown-rse"),
    pytest.param("raw", "source_replica_expression: CNAF_DISK", "source_replica_expression: site=CNAF&speed>3", 1,
                 "speed>3", "rules.3.source_replica_expression", "unknown RSE or attribute 'speed'",
                 id="unknown-attribute-in-source"),
    pytest.param("raw", "rse_expression: IHEP_DISK", "rse_expression: IHEP_DISK|", 1, "IHEP_DISK|",
                 "rules.0.rse_expression", "at position 10 in expression 'IHEP_DISK|'", id="expression-syntax"),
    pytest.param("raw", "rse_expression: JINR_TAPE", "rse_expression: site=JINR&type=TAPE&tier=0", 1, "tier=0",
                 "rules.5.rse_expression", "matches no RSE", id="expression-matches-nothing"),
    pytest.param("production", "  - IHEP_DISK", "  - tier=2", 1, "tier=2", "destinations.0", "matches no RSE",
                 id="destination-matches-nothing"),
    pytest.param("raw", "    lifetime: t1_disk\n", "    lifetime: t1_disk\n    copies: 2\n", 1, "copies: 2",
                 "rules.2.copies", "asks for 2 copies but 'CNAF_DISK' matches 1 RSE", id="copies-above-rses"),
    pytest.param("raw", "    lifetime: t1_disk\n", "    lifetime: t1_disk\n    copies: 0\n", 1, "copies: 0",
                 "rules.2.copies", "must be at least 1, got 0", id="copies-zero"),
    pytest.param("raw", "after: cnaf-disk", "after: cnaf-dsk", 1, "cnaf-dsk", "rules.3.after",
                 "unknown rule 'cnaf-dsk' (rules in this file: ihep-disk", id="after-unknown"),
    pytest.param("raw", "    lifetime: t1_disk\n", "    lifetime: t1_disk\n    after: cnaf-tape\n", 1,
                 "after: cnaf-tape", "rules.2.after", "cycle: cnaf-disk -> cnaf-tape -> cnaf-disk", id="after-cycle"),
    pytest.param("raw", "after: cnaf-disk", "after: cnaf-tape", 1, "after: cnaf-tape\n", "rules.3.after",
                 "cannot wait for itself", id="after-itself"),
    pytest.param("raw", "    select: {one_in: 3, offset: 0}\n", "", 2, "after: in2p3-disk", "rules.7.after",
                 "does not apply to every block", id="after-narrower-share"),
    pytest.param("raw", "name: jinr-tape", "name: cnaf-tape", 1, "name: cnaf-tape\n    rse_expression: JINR_TAPE",
                 "rules.5.name",
                 "duplicate rule name 'cnaf-tape' (also rules.3)", id="duplicate-template"),
    pytest.param("raw", "name: jinr-disk", "name: JINR disk", 1, "name: JINR disk", "rules.4.name",
                 "rule name 'JINR disk' must match", id="bad-template-name"),
    pytest.param("raw", "{one_in: 3, offset: 0}", "{one_in: 0, offset: 0}", 1, "one_in: 0",
                 "rules.6.select.one_in", "must be at least 1, got 0", id="select-one-in-zero"),
    pytest.param("raw", "{one_in: 3, offset: 0}", "{one_in: 3, offset: 3}", 1, "offset: 3", "rules.6.select",
                 "offset must be less than one_in", id="select-offset-too-big"),
    pytest.param("raw", "{one_in: 3, offset: 0}", "{one_in: '3', offset: 0}", 1, "one_in: '3'",
                 "rules.6.select.one_in", "expected a whole number, got '3'", id="select-not-a-number"),
    pytest.param("raw", "account: rawdata", "account: raw-data", 1, "account: raw-data", "account",
                 "unknown account 'raw-data'", id="unknown-account"),
    pytest.param("raw", "version: 1", "version: 2", 1, "version: 2", "version", "unsupported version 2",
                 id="bad-version"),
    pytest.param("production", "  log:", "  mc.foo:     {lifetime: 1 day}\n  log:", 1, "mc.foo",
                 "data_types.mc.foo", "unknown data type 'mc.foo' (production data types: mc.detsim",
                 id="unknown-data-type"),
    pytest.param("production", "  log:        {lifetime: 90 days}    # job logs\n", "", 1, "data_types:",
                 "data_types", "missing data type(s) log", id="missing-data-type"),
    pytest.param("production", "destinations:\n  - IHEP_DISK", "destinations: []", 1, "destinations: []",
                 "destinations", "at least 1 item", id="no-destinations"),
    pytest.param("user", "rse_expression: IHEP_DISK ", "rse_expression: IHEP_TAPE ", 1,
                 "rse_expression: IHEP_TAPE", "rse_expression", "USER account 'alice' has no quota at any of IHEP_TAPE",
                 id="user-rule-without-quota"),
]


@pytest.mark.parametrize(("kind", "old", "new", "occurrence", "needle", "field", "reason"), MISTAKES)
def test_each_mistake_is_reported_with_file_line_and_reason(
    tmp_path: Path, topo: Topology, kind: str, old: str, new: str, occurrence: int, needle: str, field: str,
    reason: str,
) -> None:
    text = _replace(SHIPPED[kind], old, new, occurrence)
    directory = _write(tmp_path / "policy", {**SHIPPED, kind: text})
    problems = _problems(directory, topo)
    expected_line = _line_of(text, needle)
    matching = [p for p in problems if reason in p.reason]
    assert matching, problems
    problem = matching[0]
    assert problem.source == str(directory / f"{kind}.yaml")
    assert (problem.line, problem.field) == (expected_line, field), problem


@pytest.mark.parametrize(
    ("kind", "text", "line", "reason"),
    [
        pytest.param("user", None, 0, "cannot read the policy: no such file: the user policy is required",
                     id="missing-file"),
        pytest.param("raw", "version: 1\nrules: [unclosed\n", 3, "not valid YAML", id="not-yaml"),
        pytest.param("production", "", 0, "the file is empty; expected a mapping (version, account", id="empty"),
        pytest.param("production", "# only a comment\n", 0, "the file is empty", id="only-comments"),
        pytest.param("user", "- lifetime: 3 days\n", 1, "the top level must be a mapping", id="top-level-list"),
        pytest.param("raw", "version: 1\naccount: rawdata\nrules: !!python/name:os.system\n", 3,
                     "unsupported YAML tag", id="unsafe-tag"),
    ],
)
def test_unreadable_files(tmp_path: Path, topo: Topology, kind: str, text: str | None, line: int,
                          reason: str) -> None:
    directory = _write(tmp_path / "policy", {**SHIPPED, kind: text})
    problems = _problems(directory, topo)
    assert any(reason in p.reason for p in problems), problems
    problem = next(p for p in problems if reason in p.reason)
    assert (problem.source, problem.line) == (str(directory / f"{kind}.yaml"), line)


def test_every_problem_of_every_file_at_once(tmp_path: Path, topo: Topology) -> None:
    raw = _replace(_replace(SHIPPED["raw"], "Raw Export", "Raw Exports"), "t1_disk: 90 days", "t1_disk: soon")
    directory = _write(tmp_path / "policy", {"raw": raw, "production": SHIPPED["production"], "user": None})
    with pytest.raises(PolicyError) as caught:
        load_policies(directory)
    reasons = [str(p) for p in caught.value.problems]
    assert len(reasons) == 3, reasons
    assert any("user.yaml: cannot read" in r for r in reasons)
    assert any("raw.yaml:13: lifetimes.t1_disk: bad duration 'soon'" in r for r in reasons)
    assert any("unknown activity 'Raw Exports'" in r for r in reasons)


def test_warnings_do_not_fail_the_check(tmp_path: Path, topo: Topology) -> None:
    raw = _replace(SHIPPED["raw"], "    activity: Raw Export\n", "    activity: Raw Export\n    lifetime: 30 days\n")
    policies = load_policies(_write(tmp_path / "policy", {**SHIPPED, "raw": raw}))
    assert check(policies, topo) == []
    warnings = advice(policies, topo)
    assert len(warnings) == 1
    assert warnings[0].field == "rules.0.lifetime"
    assert "tier-0 disk copy of raw data expires" in warnings[0].reason


# --- `juno-dcs placement check`


def test_cli_check_ok() -> None:
    result = CliRunner().invoke(main, ["placement", "check", "--placement-dir", str(POLICY_DIR), "--topology",
                                       str(TOPOLOGY)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "policy OK: 3 files, 15 rule templates"


def test_cli_check_reports_problems(tmp_path: Path) -> None:
    raw = _replace(SHIPPED["raw"], "rse_expression: CNAF_DISK", "rse_expression: CNAF_DSK")
    directory = _write(tmp_path / "policy", {**SHIPPED, "raw": raw})
    result = CliRunner().invoke(main, ["placement", "check", "--placement-dir", str(directory)])
    assert result.exit_code == 1, result.output
    line = _line_of(raw, "CNAF_DSK")
    assert (f"{directory / 'raw.yaml'}:{line}: rules.2.rse_expression: unknown RSE or attribute 'CNAF_DSK' "
            "in expression 'CNAF_DSK'") in result.stderr
    assert "policy NOT valid: 1 problem(s)" in result.stderr


def test_cli_check_reports_a_bad_topology_too(tmp_path: Path) -> None:
    topology = tmp_path / "topology.yaml"
    topology.write_text(TOPOLOGY.read_text(encoding="utf-8").replace("tier: 0 ", "tier: 7 "), encoding="utf-8")
    result = CliRunner().invoke(main, ["placement", "check", "--placement-dir", str(POLICY_DIR), "--topology",
                                       str(topology)])
    assert result.exit_code == 1
    assert f"{topology}:" in result.stderr
    assert "sites.IHEP.tier" in result.stderr


def test_cli_plan_with_bad_policy_exits_2(tmp_path: Path) -> None:
    directory = _write(tmp_path / "policy", {**SHIPPED, "user": "version: 1\n"})
    result = CliRunner().invoke(main, ["placement", "plan", "mc:mc.J25.IBD.rec", "--placement-dir", str(directory)])
    assert result.exit_code == 2  # a bad policy file is bad input
    assert "missing required key 'lifetime'" in result.stderr
