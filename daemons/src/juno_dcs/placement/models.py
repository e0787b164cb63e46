"""The three policy files as frozen pydantic models (extra keys forbidden, YAML types kept strictly).

Each model checks its own fields. Checks between fields of one file (duplicate rule names, `after` naming an
unknown rule or making a cycle, named lifetimes, missing data types) are in `cross_reference_problems`, which
works on plain data so that the loader reports them with the field problems; the models run it too, so a
policy built in code is just as checked. Checks against the topology are in `juno_dcs.placement.checks`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from juno_dcs.errors import ConfigError
from juno_dcs.placement.activities import activity_problem
from juno_dcs.placement.durations import DurationError, parse_duration
from juno_dcs.placement.rse_expr import RSEExpressionError, parse
from juno_dcs.topology.models import ACCOUNT_NAME
from juno_dcs.topology.models import matching as _matching
from juno_dcs.topology.sizes import SizeError, parse_size
from juno_rucio_policy.naming import DATA_TYPES, STREAM_PATTERN

PRODUCTION_DATA_TYPES = tuple(t for t in DATA_TYPES if t not in ("raw", "calib", "user", "group"))
TEMPLATE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
LIFETIME_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
STREAM = re.compile(STREAM_PATTERN)
PathProblem = tuple[tuple[str | int, ...], str]


def _duration(value: Any) -> int | None:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(f"bad duration {value!r}: {exc.reason}") from None


def _lifetime(value: Any) -> Any:
    """A duration in seconds, null (permanent) or the name of one of the file's `lifetimes`."""
    if isinstance(value, str) and LIFETIME_NAME.fullmatch(value.strip()):
        return value.strip()
    return _duration(value)


def _size(value: Any) -> int:
    try:
        return parse_size(value)
    except SizeError as exc:
        raise ValueError(f"bad size {value!r}: {exc.reason}") from None


def _expression(value: str) -> str:
    try:
        parse(value)
    except RSEExpressionError as exc:
        raise ValueError(f"bad RSE expression: {exc}") from None
    return value


def _activity(value: str) -> str:
    problem = activity_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _production_data_type(value: str) -> str:
    if value not in PRODUCTION_DATA_TYPES:
        raise ValueError(f"unknown data type {value!r} (production data types: {', '.join(PRODUCTION_DATA_TYPES)})")
    return value


def _version(value: int) -> int:
    if value != 1:
        raise ValueError(f"unsupported version {value}: this loader reads version 1")
    return value


Duration = Annotated[int | None, BeforeValidator(_duration)]
Lifetime = Annotated[int | str | None, BeforeValidator(_lifetime)]
Size = Annotated[int, BeforeValidator(_size)]
Expression = Annotated[str, AfterValidator(_expression)]
Activity = Annotated[str, AfterValidator(_activity)]
TemplateName = Annotated[str, AfterValidator(_matching(TEMPLATE_NAME, "rule name"))]
LifetimeName = Annotated[str, AfterValidator(_matching(LIFETIME_NAME, "lifetime name"))]
Stream = Annotated[str, AfterValidator(_matching(STREAM, "stream"))]
AccountName = Annotated[str, AfterValidator(_matching(ACCOUNT_NAME, "account name"))]
ProductionDataType = Annotated[str, AfterValidator(_production_data_type)]
Version = Annotated[int, AfterValidator(_version)]
Grouping = Literal["ALL", "DATASET", "NONE"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class PolicyValueError(ConfigError, ValueError):  # ValueError: raised in a pydantic validator
    """Cross-reference problems found by a model's validator, each with the path of the value at fault."""

    def __init__(self, problems: list[PathProblem]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p))}: {r}" for p, r in problems))
        self.problems = problems


class Selection(_Model):
    """A share of the days: a block of day D is selected iff D.toordinal() % one_in == offset."""

    one_in: Annotated[int, Field(ge=1)]
    offset: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _offset_below_one_in(self) -> Selection:
        if self.offset >= self.one_in:
            raise ValueError(f"offset must be less than one_in: offset {self.offset} with one_in {self.one_in} "
                             "selects no day")
        return self

    def selects(self, day: date) -> bool:
        return day.toordinal() % self.one_in == self.offset


class RuleTemplate(_Model):
    """One rule placed on every daily raw block it applies to (its `streams` and `select`)."""

    name: TemplateName
    rse_expression: Expression
    activity: Activity
    copies: Annotated[int, Field(ge=1)] = 1
    lifetime: Lifetime = None
    source_replica_expression: Expression | None = None
    grouping: Grouping = "DATASET"
    after: str | None = None
    select: Selection | None = None
    streams: Annotated[list[Stream], Field(min_length=1)] | None = None

    def applies_to(self, day: date, stream: str) -> bool:
        return (self.streams is None or stream in self.streams) and (self.select is None or self.select.selects(day))


class _CrossChecked(_Model):
    """A policy file's model that also runs that file's cross-reference checks (`KIND` names the file)."""

    KIND: ClassVar[str]

    @model_validator(mode="after")
    def _cross_references(self) -> Self:
        problems = cross_reference_problems(self.KIND, self.model_dump())
        if problems:
            raise PolicyValueError(problems)
        return self


class RawPolicy(_CrossChecked):
    """etc/placement/raw.yaml: the rules of every daily raw block, owned by `account`."""

    KIND = "raw"
    version: Version
    account: AccountName
    lifetimes: dict[LifetimeName, Duration] = {}
    rules: Annotated[list[RuleTemplate], Field(min_length=1)]

    def lifetime_of(self, template: RuleTemplate) -> int | None:
        """The template's lifetime in seconds (None: permanent), a named lifetime resolved."""
        return self.lifetimes[template.lifetime] if isinstance(template.lifetime, str) else template.lifetime


class DataTypePolicy(_Model):
    lifetime: Duration = None
    activity: Activity = "Production Output"
    grouping: Grouping = "DATASET"


class ProductionPolicy(_CrossChecked):
    """etc/placement/production.yaml: MC and reconstruction output, owned by `account`."""

    KIND = "production"
    version: Version
    account: AccountName
    destinations: Annotated[list[Expression], Field(min_length=1)]
    data_types: dict[ProductionDataType, DataTypePolicy]


class UserPolicy(_Model):
    """etc/placement/user.yaml: rules of user.<account> data and default user quotas."""

    version: Version
    lifetime: Duration
    rse_expression: Expression
    activity: Activity = "User Analysis"
    grouping: Grouping = "DATASET"
    quota: Size
    quota_rse_expression: Expression


POLICY_MODELS: dict[str, type[BaseModel]] = {"raw": RawPolicy, "production": ProductionPolicy, "user": UserPolicy}


def cross_reference_problems(kind: str, data: Mapping[str, Any]) -> list[PathProblem]:
    """Problems between the fields of one policy file (`kind`: raw, production or user), from plain data
    that may be otherwise invalid: broken parts are skipped."""
    if kind == "raw":
        return _raw_problems(data)
    if kind == "production":
        types = data.get("data_types")
        if not isinstance(types, dict):
            return []
        missing = [t for t in PRODUCTION_DATA_TYPES if t not in types]
        return [(("data_types",), f"missing data type(s) {', '.join(missing)}: every production data type needs "
                                  "its lifetime")] if missing else []
    return []


def _raw_problems(data: Mapping[str, Any]) -> list[PathProblem]:
    rules = data.get("rules")
    if not isinstance(rules, list):
        return []
    problems: list[PathProblem] = []
    first: dict[str, int] = {}
    for i, rule in enumerate(rules):
        name = rule.get("name") if isinstance(rule, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            problems.append((("rules", i, "name"), f"duplicate rule name {name!r} (also rules.{first[name]})"))
        first.setdefault(name, i)
    lifetimes = data.get("lifetimes")
    named = sorted(lifetimes) if isinstance(lifetimes, dict) else []
    after: dict[str, str] = {}
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        lifetime = rule.get("lifetime")
        if isinstance(lifetime, str) and LIFETIME_NAME.fullmatch(lifetime.strip()) and lifetime.strip() not in named:
            problems.append((("rules", i, "lifetime"),
                             f"unknown lifetime {lifetime!r} (named lifetimes: {', '.join(named) or 'none'}; "
                             "or a duration such as '90 days', or null for permanent)"))
        target, name = rule.get("after"), rule.get("name")
        if not isinstance(target, str):
            continue
        if target == name:
            problems.append((("rules", i, "after"), f"rule {name!r} cannot wait for itself"))
        elif target not in first:
            problems.append((("rules", i, "after"),
                             f"unknown rule {target!r} (rules in this file: {', '.join(first)})"))
        elif isinstance(name, str) and first.get(name) == i:
            after[name] = target
    return problems + _cycle_problems(after, first)


def _cycle_problems(after: dict[str, str], index: dict[str, int]) -> list[PathProblem]:
    """One problem per cycle of `after`, at the cycle's rule that comes first in the file."""
    problems: list[PathProblem] = []
    reported: set[str] = set()
    for start in after:
        chain = [start]
        while chain[-1] in after and after[chain[-1]] not in chain:
            chain.append(after[chain[-1]])
        if chain[-1] not in after or after[chain[-1]] != start:
            continue  # no cycle through `start`
        if start in reported:
            continue
        reported.update(chain)
        head = min(chain, key=lambda n: index[n])
        loop = chain[chain.index(head):] + chain[:chain.index(head)] + [head]
        problems.append((("rules", index[head], "after"), f"rules wait for each other in a cycle: {' -> '.join(loop)}"))
    return problems
