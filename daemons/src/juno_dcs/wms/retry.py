"""Retry rules (etc/wms-retry.yaml): data that decides what a failed attempt leads to.

The first rule whose `match` fits (any of its `error_code`s or `error_class`es) decides; no rule: `default`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from juno_dcs.errors import ConfigError
from juno_dcs.wms.models import ERROR_CLASSES, ERROR_CODES
from juno_dcs.yamlconfig import load_model

Action = Literal["no_retry", "retry", "retry_more_memory"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Match(_Frozen):
    error_code: list[int] = []
    error_class: list[str] = []

    @field_validator("error_code", "error_class", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, int | str) else value

    @field_validator("error_code")
    @classmethod
    def _known_codes(cls, value: list[int]) -> list[int]:
        for code in value:
            if code not in ERROR_CODES:
                raise ValueError(f"unknown error code {code}: known are {sorted(ERROR_CODES)}")
        return value

    @field_validator("error_class")
    @classmethod
    def _known_classes(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in ERROR_CLASSES:
                raise ValueError(f"unknown error class {name!r}: known are {sorted(ERROR_CLASSES)}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not self.error_code and not self.error_class:
            raise ValueError("a match needs error_code or error_class")
        return self

    def fits(self, error_code: int | None, error_class: str | None) -> bool:
        return error_code in self.error_code or error_class in self.error_class


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


def load_rules(path: Path) -> RetryRules:
    return load_model(path, RetryRules, "retry rules", ConfigError)


def decide(rules: RetryRules, error_code: int | None, error_class: str | None, attempt: int, max_attempts: int,
           memory_mb: int) -> Decision:
    """What the failed attempt number `attempt` (1-based) of a job leads to."""
    what = f"error {error_code} ({error_class})"
    chosen = next(((i, r) for i, r in enumerate(rules.rules) if r.match.fits(error_code, error_class)), None)
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
