"""The typed topology: sites, RSEs, distances, accounts, scopes and quotas (frozen pydantic models).

Each model checks its own fields (strictly: YAML already gives numbers, booleans and text their types).
Checks that relate sections (an RSE's site, a scope's owner, a quota's RSE) are in
`cross_reference_problems`, which works on plain data so that the loader can report them together with
field problems; `Topology` runs it too, so a model built without the loader is just as checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from juno_dcs.errors import ConfigError
from juno_dcs.topology.sizes import SizeError, parse_size
from juno_rucio_policy.naming import scope_problem

RSE_NAME = re.compile(r"[A-Z0-9_-]+")  # Rucio's default RSE name rule
SITE_NAME = re.compile(r"[A-Z0-9][A-Z0-9_-]*")
ACCOUNT_NAME = re.compile(r"[a-z0-9_-]{1,25}")
SCOPE_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,25}")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_-]+")
COUNTRY = re.compile(r"[A-Z]{2}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
RELEASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")  # an offline-software release: J25.1.0, J20v1r0-Pre2
RESERVED_ATTRIBUTES = frozenset({"site", "tier", "country", "type", "rse_type", "fts"})
REQUIRED_ACCOUNTS = ("root", "rawdata", "production")
MAX_USER_NAME = 25 - len("user.")  # a USER's scope user.<name> must fit Rucio's 25 characters

AttrValue = str | int | bool
PathProblem = tuple[tuple[str, ...], str]  # (path of the value at fault, reason)


def matching(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{what} {value!r} must match ^{pattern.pattern}$")
        return value

    return check


def _no_repeats(values: list[str]) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"listed more than once: {', '.join(repeated)}")
    return values


def _attribute_name(name: str) -> str:
    if name in RESERVED_ATTRIBUTES:
        raise ValueError(f"attribute {name!r} is reserved: site, tier, country and type come from the RSE's site "
                         "and type (tapes get rse_type TAPE), fts is the grid's transfer service")
    return matching(ATTRIBUTE_NAME, "attribute name")(name)


def _country(value: str) -> str:
    if not COUNTRY.fullmatch(value):
        raise ValueError(f"country {value!r} must be an ISO 3166 alpha-2 code: two capital letters such as CN")
    return value


def _email(value: str) -> str:
    if not EMAIL.fullmatch(value):
        raise ValueError(f"email {value!r} must be one address of the form name@domain")
    return value


def _quota(value: object) -> object:
    try:
        parse_size(value)  # type: ignore[arg-type]  # parse_size refuses other types with a reason
    except SizeError as exc:
        raise ValueError(f"bad quota {value!r}: {exc.reason}") from None
    return value


SiteName = Annotated[str, AfterValidator(matching(SITE_NAME, "site name"))]
ReleaseName = Annotated[str, AfterValidator(matching(RELEASE_NAME, "release name"))]
RSEName = Annotated[str, AfterValidator(matching(RSE_NAME, "RSE name"))]
AccountName = Annotated[str, AfterValidator(matching(ACCOUNT_NAME, "account name"))]
def _juno_scope(value: str) -> str:
    problem = scope_problem(value)
    if problem:
        raise ValueError(problem)
    return value


ScopeName = Annotated[str, AfterValidator(matching(SCOPE_NAME, "scope name")), AfterValidator(_juno_scope)]
AttributeName = Annotated[str, AfterValidator(_attribute_name)]
Quota = Annotated[int | str, BeforeValidator(_quota)]
Distance = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Slots(_Model):
    cores: Annotated[int, Field(gt=0)]
    memory_per_core_gb: Annotated[float, Field(gt=0)]
    walltime_hours: Annotated[int, Field(gt=0)]


class Site(_Model):
    tier: Annotated[int, Field(ge=0, le=2)]
    country: Annotated[str, AfterValidator(_country)]
    description: str = ""
    slots: Slots
    online: bool = True
    releases: Annotated[list[ReleaseName], AfterValidator(_no_repeats)] = []  # installed, as CVMFS publishes them


class RSE(_Model):
    site: str
    type: Literal["DISK", "TAPE"]
    attributes: dict[AttributeName, AttrValue] = {}
    volatile: bool = False


class Distances(_Model):
    same_site: Distance
    default: Distance
    sites: dict[str, Distance] = {}  # "A B" -> distance between sites A and B, both ways


class Account(_Model):
    type: Literal["USER", "SERVICE", "GROUP"]
    email: Annotated[str, AfterValidator(_email)]
    description: str = ""


def _version(value: int) -> int:
    if value != 1:
        raise ValueError(f"unsupported version {value}: this loader reads version 1")
    return value


class Topology(_Model):
    version: Annotated[int, AfterValidator(_version)]
    sites: dict[SiteName, Site]
    rses: dict[RSEName, RSE]
    distances: Distances
    accounts: dict[AccountName, Account]
    scopes: dict[ScopeName, str] = {}  # scope -> owner account
    quotas: dict[str, dict[str, Quota]] = {}  # account -> RSE name or "*" -> size

    @model_validator(mode="after")
    def _cross_references(self) -> Topology:
        problems = cross_reference_problems(self.model_dump())
        if problems:
            raise TopologyValueError(problems)
        return self

    # --- derived views
    def rse_type(self, name: str) -> str:
        """Rucio's rse_type: TAPE for tapes, DISK otherwise."""
        return self.rses[name].type

    def rse_attributes(self, name: str) -> dict[str, AttrValue]:
        """site, tier, country and type from the RSE's site and type, plus its extra attributes."""
        rse = self.rses[name]
        site = self.sites[rse.site]
        return {"site": rse.site, "tier": site.tier, "country": site.country, "type": rse.type, **rse.attributes}

    def rses_where(self, **attrs: AttrValue) -> list[str]:
        """Sorted names of the RSEs whose attributes equal all of `attrs` (like `tier=1&type=DISK`)."""
        return sorted(n for n in self.rses if all(self.rse_attributes(n).get(k) == v for k, v in attrs.items()))

    def distance(self, src_rse: str, dst_rse: str) -> int:
        """same_site within a site, else the site pair's distance (either order), else the default."""
        a, b = self.rses[src_rse].site, self.rses[dst_rse].site
        if a == b:
            return self.distances.same_site
        for pair, value in self.distances.sites.items():
            if sorted(pair.split()) == sorted((a, b)):
                return value
        return self.distances.default

    def releases(self) -> dict[str, list[str]]:
        """Each release any site publishes -> the sites that have it (sorted)."""
        out: dict[str, list[str]] = {}
        for name, site in sorted(self.sites.items()):
            for release in site.releases:
                out.setdefault(release, []).append(name)
        return dict(sorted(out.items()))

    def all_scopes(self) -> dict[str, str]:
        """The listed scopes plus user.<name> for every USER account, each with its owner."""
        scopes = dict(self.scopes)
        for name, account in self.accounts.items():
            if account.type == "USER":
                scopes.setdefault(f"user.{name}", name)
        return dict(sorted(scopes.items()))

    def resolved_quotas(self) -> dict[str, dict[str, int]]:
        """account -> RSE -> bytes, with "*" expanded to every RSE not named for that account."""
        resolved: dict[str, dict[str, int]] = {}
        for account, limits in self.quotas.items():
            named = {rse: parse_size(v) for rse, v in limits.items() if rse != "*"}
            if "*" in limits:
                rest = parse_size(limits["*"])
                named.update({rse: rest for rse in self.rses if rse not in named})
            resolved[account] = dict(sorted(named.items()))
        return resolved


class TopologyValueError(ConfigError, ValueError):  # ValueError: raised in a pydantic validator
    """Cross-reference problems found by Topology's validator, each with the path of the value at fault."""

    def __init__(self, problems: list[PathProblem]) -> None:
        super().__init__("; ".join(f"{'.'.join(p)}: {r}" for p, r in problems))
        self.problems = problems


def _section(data: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    return {k: v for k, v in value.items() if isinstance(k, str)} if isinstance(value, dict) else None


def cross_reference_problems(data: Mapping[str, Any]) -> list[PathProblem]:
    """Problems between sections, from plain (possibly otherwise invalid) data: broken parts are skipped."""
    problems: list[PathProblem] = []
    sites, rses = _section(data, "sites"), _section(data, "rses")
    accounts, scopes, quotas = _section(data, "accounts"), _section(data, "scopes"), _section(data, "quotas")
    if sites is not None and rses is not None:
        known = ", ".join(sorted(sites))
        for name, rse in rses.items():
            site = rse.get("site") if isinstance(rse, dict) else None
            if isinstance(site, str) and site not in sites:
                problems.append((("rses", name, "site"), f"unknown site {site!r} (known sites: {known})"))
    distances = data.get("distances")
    pairs = distances.get("sites") if isinstance(distances, dict) else None
    if sites is not None and isinstance(pairs, dict):
        problems += _pair_problems(sites, pairs)
    if accounts is not None:
        problems += _account_problems(accounts)
        known = ", ".join(sorted(accounts))
        for scope, owner in (scopes or {}).items():
            if isinstance(owner, str) and owner not in accounts:
                problems.append((("scopes", scope), f"unknown account {owner!r} (known accounts: {known})"))
            user = scope.removeprefix("user.")
            if scope.startswith("user.") and _is_user(accounts.get(user)) and owner != user:
                problems.append((("scopes", scope), f"the scope of USER account {user!r} must be owned by it, "
                                                    f"not by {owner!r}"))
        for account in quotas or {}:
            if account not in accounts:
                problems.append((("quotas", account), f"unknown account {account!r} (known accounts: {known})"))
    if rses is not None:
        known = ", ".join(sorted(rses))
        for account, limits in (quotas or {}).items():
            for rse in limits if isinstance(limits, dict) else ():
                if isinstance(rse, str) and rse != "*" and rse not in rses:
                    problems.append((("quotas", account, rse), f"unknown RSE {rse!r} (known RSEs: {known}; or '*')"))
    return problems


def _is_user(account: object) -> bool:
    return isinstance(account, dict) and account.get("type") == "USER"


def _account_problems(accounts: dict[str, Any]) -> list[PathProblem]:
    problems: list[PathProblem] = [
        (("accounts",), f"missing required account {name!r} (other tools rely on it)")
        for name in REQUIRED_ACCOUNTS if name not in accounts
    ]
    for name, account in accounts.items():
        if _is_user(account) and len(name) > MAX_USER_NAME:
            problems.append((("accounts", name), f"a USER account's name has at most {MAX_USER_NAME} characters, "
                                                 f"so that its scope 'user.{name}' fits Rucio's 25"))
    return problems


def _pair_problems(sites: dict[str, Any], pairs: dict[Any, Any]) -> list[PathProblem]:
    problems: list[PathProblem] = []
    known = ", ".join(sorted(sites))
    seen: dict[tuple[str, ...], str] = {}
    for pair in pairs:
        if not isinstance(pair, str):
            continue
        where = ("distances", "sites", pair)
        parts = pair.split()
        if len(parts) != 2:
            problems.append((where, f"{pair!r} must be two site names separated by a space, e.g. 'IHEP CNAF'"))
            continue
        problems += [(where, f"unknown site {p!r} (known sites: {known})") for p in parts if p not in sites]
        if parts[0] == parts[1]:
            problems.append((where, "a site's distance to itself is distances.same_site"))
        key = tuple(sorted(parts))
        if key in seen:
            problems.append((where, f"the pair is given twice (also as {seen[key]!r})"))
        seen.setdefault(key, pair)
    return problems
