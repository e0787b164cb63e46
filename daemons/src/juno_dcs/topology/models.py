"""The typed topology: sites, RSEs, distances, accounts, scopes and quotas (frozen pydantic models).

Field checks live on the models; checks that relate sections (an RSE's site, a scope's owner, a quota's
RSE) live in `Topology`'s validator, each raising with the path of the value at fault.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from juno_dcs.topology.sizes import parse_size

RSE_NAME = re.compile(r"^[A-Z0-9_-]+$")
SITE_NAME = re.compile(r"^[A-Z0-9][A-Z0-9_-]*$")
ACCOUNT_NAME = re.compile(r"^[a-z0-9_-]{1,25}$")
SCOPE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,25}$")
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
RESERVED_ATTRIBUTES = frozenset({"site", "tier", "country", "type", "rse_type"})
REQUIRED_ACCOUNTS = ("root", "rawdata", "production")

AttrValue = str | int | bool


class TopologyValueError(ValueError):
    """A cross-reference problem found by Topology's validator, with the path of the value at fault."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(p)}: {r}" for p, r in problems))
        self.problems = problems


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class Slots(_Frozen):
    cores: Annotated[int, Field(gt=0)]
    memory_per_core_gb: Annotated[float, Field(gt=0)]
    walltime_hours: Annotated[int, Field(gt=0)]


class Site(_Frozen):
    tier: Annotated[int, Field(ge=0, le=2)]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    description: str = ""
    slots: Slots
    online: bool = True


class RSE(_Frozen):
    site: str
    type: Literal["DISK", "TAPE"]
    attributes: dict[str, AttrValue] = {}
    volatile: bool = False

    @field_validator("attributes")
    @classmethod
    def _attribute_keys(cls, value: dict[str, AttrValue]) -> dict[str, AttrValue]:
        for key in value:
            if key in RESERVED_ATTRIBUTES:
                raise ValueError(f"attribute {key!r} is set from the site and type; do not set it here")
            if not ATTRIBUTE_KEY.match(key):
                raise ValueError(f"attribute name {key!r} must match {ATTRIBUTE_KEY.pattern}")
        return value


class Distances(_Frozen):
    same_site: Annotated[int, Field(ge=0)]
    default: Annotated[int, Field(ge=0)]
    sites: dict[str, Annotated[int, Field(ge=0)]] = {}


class Account(_Frozen):
    type: Literal["USER", "SERVICE", "GROUP"]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
    description: str = ""


Problems = list[tuple[tuple[str, ...], str]]


def _name_problems(section: str, names: object, pattern: re.Pattern[str], what: str) -> Problems:
    if not isinstance(names, dict):
        return []
    return [((section, str(n)), f"{what} name {n!r} must match {pattern.pattern}")
            for n in names if not isinstance(n, str) or not pattern.match(n)]


class Topology(_Frozen):
    version: Literal[1]
    sites: dict[str, Site]
    rses: dict[str, RSE]
    distances: Distances
    accounts: dict[str, Account]
    scopes: dict[str, str] = {}
    quotas: dict[str, dict[str, int | str]] = {}

    @model_validator(mode="after")
    def _cross_references(self) -> Topology:
        problems = (
            _name_problems("sites", self.sites, SITE_NAME, "site")
            + _name_problems("rses", self.rses, RSE_NAME, "RSE")
            + _name_problems("accounts", self.accounts, ACCOUNT_NAME, "account")
            + _name_problems("scopes", self.scopes, SCOPE_NAME, "scope")
        )
        known_sites = ", ".join(sorted(self.sites))
        for name, rse in self.rses.items():
            if rse.site not in self.sites:
                problems.append((("rses", name, "site"), f"unknown site {rse.site!r} (known sites: {known_sites})"))
        seen_pairs: dict[frozenset[str], str] = {}
        for pair in self.distances.sites:
            parts = pair.split()
            where = ("distances", "sites", pair)
            if len(parts) != 2:
                problems.append((where, f"{pair!r} must be two site names separated by a space"))
                continue
            for part in parts:
                if part not in self.sites:
                    problems.append((where, f"unknown site {part!r} (known sites: {known_sites})"))
            if parts[0] == parts[1]:
                problems.append((where, "a site's distance to itself is `same_site`"))
            key = frozenset(parts)
            if key in seen_pairs:
                problems.append((where, f"the pair is given twice (also as {seen_pairs[key]!r})"))
            seen_pairs[key] = pair
        for required in REQUIRED_ACCOUNTS:
            if required not in self.accounts:
                problems.append((("accounts",), f"missing required account {required!r} (other tools rely on it)"))
        known_accounts = ", ".join(sorted(self.accounts))
        for scope, owner in self.scopes.items():
            if owner not in self.accounts:
                problems.append((("scopes", scope), f"unknown account {owner!r} (known accounts: {known_accounts})"))
            elif scope.startswith("user.") and scope != f"user.{owner}":
                problems.append((("scopes", scope), f"a user scope belongs to its user, not {owner!r}"))
        for account, limits in self.quotas.items():
            if account not in self.accounts:
                problems.append(
                    (("quotas", account), f"unknown account {account!r} (known accounts: {known_accounts})")
                )
            for rse_name, value in limits.items():
                if rse_name != "*" and rse_name not in self.rses:
                    problems.append((("quotas", account, rse_name), f"unknown RSE {rse_name!r} (known RSEs: "
                                     f"{', '.join(sorted(self.rses))}, or '*')"))
                try:
                    parse_size(value)
                except ValueError as exc:
                    problems.append((("quotas", account, rse_name), f"bad quota: {exc}"))
        if problems:
            raise TopologyValueError(problems)
        return self

    # --- derived views
    def rse_type(self, name: str) -> str:
        return self.rses[name].type

    def rse_attributes(self, name: str) -> dict[str, AttrValue]:
        rse = self.rses[name]
        site = self.sites[rse.site]
        return {"site": rse.site, "tier": site.tier, "country": site.country, "type": rse.type, **rse.attributes}

    def rses_where(self, **attrs: AttrValue) -> list[str]:
        return sorted(n for n in self.rses if all(self.rse_attributes(n).get(k) == v for k, v in attrs.items()))

    def distance(self, src: str, dst: str) -> int:
        a, b = self.rses[src].site, self.rses[dst].site
        if a == b:
            return self.distances.same_site
        for pair, value in self.distances.sites.items():
            if frozenset(pair.split()) == {a, b}:
                return value
        return self.distances.default

    def all_scopes(self) -> dict[str, str]:
        scopes = dict(self.scopes)
        for name, account in self.accounts.items():
            if account.type == "USER":
                scopes.setdefault(f"user.{name}", name)
        return dict(sorted(scopes.items()))

    def resolved_quotas(self) -> dict[str, dict[str, int]]:
        resolved: dict[str, dict[str, int]] = {}
        for account, limits in self.quotas.items():
            named = {rse: parse_size(v) for rse, v in limits.items() if rse != "*"}
            if "*" in limits:
                rest = parse_size(limits["*"])
                named.update({rse: rest for rse in self.rses if rse not in named})
            resolved[account] = dict(sorted(named.items()))
        return resolved
