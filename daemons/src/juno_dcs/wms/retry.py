"""Retry rules (etc/wms-retry.yaml): data that decides what a failed attempt leads to.

The first rule whose `match` fits (any of its `error_code`s, `error_class`es or `nature`s) decides; no rule:
`default`. The classes and their natures are those of the failure classes (etc/wms-errors.yaml,
juno_dcs.wms.classify): a rule naming a class that file does not have is refused when the files are loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from juno_dcs.errors import ConfigError
from juno_dcs.wms.classify import Classified, ErrorRules, Nature, as_list
from juno_dcs.wms.models import ERROR_CODES
from juno_dcs.yamlconfig import load_model

Action = Literal["no_retry", "retry", "retry_elsewhere", "retry_more_memory"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Match(_Frozen):
    error_code: list[int] = []
    error_class: list[str] = []
    nature: list[Nature] = []

    @field_validator("error_code", "error_class", "nature", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return as_list(value)

    @field_validator("error_code")
    @classmethod
    def _known_codes(cls, value: list[int]) -> list[int]:
        for code in value:
            if code not in ERROR_CODES:
                raise ValueError(f"unknown error code {code}: known are {sorted(ERROR_CODES)}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not self.error_code and not self.error_class and not self.nature:
            raise ValueError("a match needs error_code, error_class or nature")
        return self

    def fits(self, error_code: int | None, failure: Classified) -> bool:
        return (error_code in self.error_code or failure.error_class in self.error_class
                or failure.nature in self.nature)


class Rule(_Frozen):
    match: Match
    action: Action
    factor: Annotated[float, Field(gt=1)] = 2.0
    description: str = ""


class RetryRules(_Frozen):
    rules: list[Rule]
    default: Action = "no_retry"


@dataclass(frozen=True)
class Decision:
    action: Action           # what to do: no_retry also when the attempts are used up
    memory_mb: int           # the next attempt's memory
    reason: str              # in words, for the job's history


def load_rules(path: Path, classes: ErrorRules) -> RetryRules:
    """The retry rules at `path`, every class they name checked against the failure classes."""
    rules = load_model(path, RetryRules, "retry rules", ConfigError)
    for i, rule in enumerate(rules.rules):
        unknown = [name for name in rule.match.error_class if name not in classes.classes]
        if unknown:
            raise ConfigError(f"{path}: rule {i + 1} (rules.{i}), match.error_class: {unknown} not among the "
                              f"failure classes {sorted(classes.classes)} (wms-errors.yaml)")
    return rules


def decide(rules: RetryRules, error_code: int | None, failure: Classified, attempt: int, max_attempts: int,
           memory_mb: int) -> Decision:
    """What the failed attempt number `attempt` (1-based) of a job leads to."""
    what = f"error {error_code} ({failure.error_class}, {failure.nature})"
    chosen = next(((i, r) for i, r in enumerate(rules.rules) if r.match.fits(error_code, failure)), None)
    if chosen is not None:
        action, factor = chosen[1].action, chosen[1].factor
        why = f"{what}: rule {chosen[0] + 1} says {action}"
    else:
        action, factor, why = rules.default, 2.0, f"{what}: no rule matches, default {rules.default}"
    if action == "no_retry":
        return Decision("no_retry", memory_mb, why)
    if attempt >= max_attempts:
        return Decision("no_retry", memory_mb, f"{why}, but attempt {attempt} of {max_attempts} was the last")
    if action == "retry_more_memory":
        more = math.ceil(memory_mb * factor)
        return Decision(action, more, f"{why}: memory {memory_mb} -> {more} MB, attempt {attempt + 1}")
    return Decision(action, memory_mb, f"{why}: attempt {attempt + 1} of {max_attempts}")
