"""Failure classes (etc/wms-errors.yaml): data that says what a failed attempt's error is, and of which nature.

    ErrorRules   classes: name -> {nature: deterministic | transient, description}
                 rules:   [{match: {reported, exit_code, message}, error_class, description}]

The pilot reports a stable code (juno_dcs.wms.models.ERROR_CODES: `reported` is its name: payload, stagein, ...),
the payload's exit code and a diagnostic (for a payload, the tail of its stderr). The first rule whose match fits
(every condition it gives: one of its `reported`, one of its `exit_code`s, its `message` regex found in the
diagnostic, case-insensitively) names the class; no rule fits: the reported name is the class. Every reported
name must therefore be a class of the file. The retry rules (juno_dcs.wms.retry) decide what a class or a nature
leads to; nothing here decides an action.

A bad file is a ConfigError naming the file, the rule (1-based, as a person counts them) and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, field_validator, model_validator

from juno_dcs.errors import ConfigError
from juno_dcs.wms.models import ERROR_CLASSES, ERROR_CODES

Nature = Literal["deterministic", "transient"]
ClassName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


def as_list(value: object) -> object:
    """A YAML scalar where a list is expected is a list of one."""
    return [value] if isinstance(value, int | str) else value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorClass(_Frozen):
    nature: Nature
    description: str = ""


class ClassMatch(_Frozen):
    reported: list[str] = []
    exit_code: list[int] = []
    message: str | None = None

    @field_validator("reported", "exit_code", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return as_list(value)

    @field_validator("reported")
    @classmethod
    def _known_reported(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in ERROR_CLASSES:
                raise ValueError(f"{name!r} is not a class the pilot reports: those are {sorted(ERROR_CLASSES)}")
        return value

    @field_validator("message")
    @classmethod
    def _a_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> ClassMatch:
        if not self.reported and not self.exit_code and self.message is None:
            raise ValueError("a match needs reported, exit_code or message")
        return self

    def fits(self, reported: str | None, exit_code: int | None, diag: str) -> bool:
        if self.reported and reported not in self.reported:
            return False
        if self.exit_code and exit_code not in self.exit_code:
            return False
        return self.message is None or re.search(self.message, diag, re.IGNORECASE) is not None


class ClassRule(_Frozen):
    match: ClassMatch
    error_class: ClassName
    description: str = ""


class ErrorRules(_Frozen):
    classes: dict[ClassName, ErrorClass]
    rules: list[ClassRule] = []

    @model_validator(mode="after")
    def _classes_known(self) -> ErrorRules:
        for i, rule in enumerate(self.rules):
            if rule.error_class not in self.classes:
                raise _RuleError(i, "error_class", f"{rule.error_class!r} is not one of the classes "
                                                   f"{sorted(self.classes)}")
        missing = sorted(set(ERROR_CLASSES) - set(self.classes))
        if missing:
            raise ValueError(f"classes: the pilot reports {missing} too: every reported name needs its class "
                             "(it is the class when no rule fits)")
        return self


class _RuleError(ValueError):
    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(f"rule {index + 1} (rules.{index}), {field}: {message}")


@dataclass(frozen=True)
class Classified:
    error_class: str
    nature: Nature
    rule: int | None  # 1-based; None: no rule fitted, the reported name is the class

    def words(self) -> str:
        how = f"rule {self.rule}" if self.rule is not None else "as reported"
        return f"{self.error_class}, {self.nature} ({how})"


def _where(loc: tuple[int | str, ...]) -> str:
    """A validation error's location in words: rules.3.match.message -> rule 4 (rules.3), match.message."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rest = ".".join(str(p) for p in loc[2:])
        return f"rule {loc[1] + 1} (rules.{loc[1]})" + (f", {rest}" if rest else "")
    return ".".join(str(p) for p in loc)


def _problem(loc: tuple[int | str, ...], msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    return f"{_where(loc)}: {msg}" if loc else msg


def parse_error_rules(data: Any, source: str) -> ErrorRules:
    """The rules from the YAML document `data`; a ConfigError naming `source`, the rule and the field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the error classes must be a mapping with `classes` and `rules`, "
                          f"not {type(data).__name__}")
    try:
        return ErrorRules.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(tuple(e["loc"]), e["msg"]) for e in exc.errors())
        raise ConfigError(f"{source}: {problems}") from exc


def load_error_rules(path: Path) -> ErrorRules:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the error classes: {exc}") from exc
    return parse_error_rules(data, str(path))


def classify(rules: ErrorRules, error_code: int | None, exit_code: int | None, diag: str) -> Classified:
    """The class and nature of a failed attempt from what the pilot (or the agent, for a lost lease) reported."""
    reported = ERROR_CODES.get(error_code) if error_code is not None else None
    for i, rule in enumerate(rules.rules):
        if rule.match.fits(reported, exit_code, diag or ""):
            return Classified(rule.error_class, rules.classes[rule.error_class].nature, i + 1)
    name = reported if reported is not None else "payload"
    return Classified(name, rules.classes[name].nature, None)
