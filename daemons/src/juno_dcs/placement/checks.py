"""The policies against the topology: `check` (errors: Rucio would refuse or never satisfy the rules) and
`advice` (warnings: valid, but probably not what the data managers mean).

Errors: an expression that does not parse, names an unknown RSE or attribute, or matches no RSE; copies above
the number of matching RSEs; a rule owner that is not an account of the topology, or has a quota at fewer
matching RSEs than the rule needs copies (Rucio refuses such a rule); a rule that waits (`after`) for a rule
that does not apply to all of its blocks (it would wait for ever); a USER account that has a quota at none of
the RSEs of user.yaml's rse_expression.

Warnings: a tier-0 disk copy of raw data with a lifetime (IHEP disk is meant to keep everything); a tape copy
with a lifetime; a source_replica_expression outside the RSEs of the rule it waits for (the wait would not
guarantee the source has the files). A tape rule without `after` is no warning: IHEP's tape reads from the
disk the ingestor uploads to, and needs no wait.
"""

from __future__ import annotations

from juno_dcs.placement.loader import Policies, PolicySource
from juno_dcs.placement.models import RuleTemplate
from juno_dcs.placement.quotas import user_quotas
from juno_dcs.placement.rse_expr import RSEExpressionError, attribute_table, evaluate
from juno_dcs.topology import Problem, Topology
from juno_dcs.topology.yamlsrc import DataPath


class _Checker:
    def __init__(self, policies: Policies, topology: Topology) -> None:
        self.policies = policies
        self.topology = topology
        self.table = attribute_table(topology)
        self.quotas = topology.resolved_quotas()
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, source: PolicySource, path: DataPath, reason: str) -> None:
        self.errors.append(source.problem(path, reason))

    def warn(self, source: PolicySource, path: DataPath, reason: str) -> None:
        self.warnings.append(source.problem(path, reason))

    def rses(self, source: PolicySource, path: DataPath, expression: str) -> list[str] | None:
        """The RSEs of `expression`, or None after reporting why there are none."""
        try:
            selected = evaluate(expression, self.table)
        except RSEExpressionError as exc:
            self.error(source, path, str(exc))
            return None
        if not selected:
            self.error(source, path, f"{expression!r} matches no RSE of the topology")
            return None
        return selected

    def account(self, source: PolicySource, account: str) -> bool:
        if account in self.topology.accounts:
            return True
        known = ", ".join(sorted(self.topology.accounts))
        self.error(source, ("account",), f"unknown account {account!r} (accounts of the topology: {known})")
        return False

    def quota(self, source: PolicySource, path: DataPath, account: str, rses: list[str], copies: int) -> None:
        covered = [r for r in rses if self.quotas.get(account, {}).get(r, 0) > 0]
        if len(covered) < copies:
            self.error(source, path, f"{account} has a quota at {len(covered)} of its RSEs ({', '.join(rses)}) but "
                                     f"the rule needs {copies}: Rucio would refuse it")

    # --- the three files
    def raw(self) -> None:
        raw, source = self.policies.raw, self.policies.source("raw")
        owner_ok = self.account(source, raw.account)
        targets: dict[str, list[str]] = {}
        for i, t in enumerate(raw.rules):
            where = ("rules", i)
            rses = self.rses(source, (*where, "rse_expression"), t.rse_expression)
            if rses is not None:
                targets[t.name] = rses
                if t.copies > len(rses):
                    self.error(source, (*where, "copies"), f"rule {t.name!r} asks for {t.copies} copies but "
                                                           f"{t.rse_expression!r} matches {len(rses)} RSE(s)")
                elif owner_ok:
                    self.quota(source, (*where, "rse_expression"), raw.account, rses, t.copies)
                self._raw_advice(source, where, t, rses, raw.lifetime_of(t))
            if t.source_replica_expression is not None:
                self.rses(source, (*where, "source_replica_expression"), t.source_replica_expression)
        by_name = {t.name: t for t in raw.rules}
        for i, t in enumerate(raw.rules):
            first = by_name.get(t.after or "")
            if first is None:
                continue
            if not _covers(first, t):
                self.error(source, ("rules", i, "after"),
                           f"rule {t.name!r} waits for {first.name!r}, which does not apply to every block "
                           f"{t.name!r} applies to (select/streams differ): it would wait for ever")
            if t.source_replica_expression and t.name in targets and first.name in targets:
                try:
                    sources = set(evaluate(t.source_replica_expression, self.table))
                except RSEExpressionError:
                    continue
                if not sources <= set(targets[first.name]):
                    self.warn(source, ("rules", i, "source_replica_expression"),
                              f"rule {t.name!r} reads from {', '.join(sorted(sources))} but waits for "
                              f"{first.name!r} at {', '.join(targets[first.name])}: the wait does not ensure "
                              "the source has the files")

    def _raw_advice(self, source: PolicySource, where: DataPath, t: RuleTemplate, rses: list[str],
                    lifetime: int | None) -> None:
        attrs = [self.table[r] for r in rses]
        if lifetime is not None and any(a["tier"] == 0 and a["type"] == "DISK" for a in attrs):
            self.warn(source, (*where, "lifetime"), f"rule {t.name!r}: the tier-0 disk copy of raw data expires; "
                                                    "IHEP disk is meant to keep every block (lifetime: null)")
        if lifetime is not None and all(a["type"] == "TAPE" for a in attrs):
            self.warn(source, (*where, "lifetime"), f"tape rule {t.name!r} has a lifetime: the custodial copy "
                                                    "would be deleted")

    def production(self) -> None:
        production, source = self.policies.production, self.policies.source("production")
        owner_ok = self.account(source, production.account)
        for i, expression in enumerate(production.destinations):
            rses = self.rses(source, ("destinations", i), expression)
            if rses is not None and owner_ok:
                self.quota(source, ("destinations", i), production.account, rses, 1)

    def user(self) -> None:
        user, source = self.policies.user, self.policies.source("user")
        self.rses(source, ("quota_rse_expression",), user.quota_rse_expression)
        rses = self.rses(source, ("rse_expression",), user.rse_expression)
        if rses is None:
            return
        try:
            quotas = user_quotas(self.topology, user)
        except RSEExpressionError:
            return  # reported for quota_rse_expression
        for account, limits in quotas.items():
            if not any(limits.get(r, 0) > 0 for r in rses):
                self.error(source, ("rse_expression",), f"USER account {account!r} has no quota at any of "
                                                        f"{', '.join(rses)}: its default rules would be refused")


def _covers(first: RuleTemplate, then: RuleTemplate) -> bool:
    """Whether `first` applies to every block that `then` applies to."""
    same_share = first.select is None or first.select == then.select
    streams = first.streams is None or (then.streams is not None and set(then.streams) <= set(first.streams))
    return same_share and streams


def _run(policies: Policies, topology: Topology) -> _Checker:
    checker = _Checker(policies, topology)
    checker.raw()
    checker.production()
    checker.user()
    return checker


def check(policies: Policies, topology: Topology) -> list[Problem]:
    """Every error of the policies against the topology (file, line, field, reason); [] when all is well."""
    return _run(policies, topology).errors


def advice(policies: Policies, topology: Topology) -> list[Problem]:
    """Warnings: allowed, but probably a mistake (see the module docstring)."""
    return _run(policies, topology).warnings
