"""Rule lifetimes in seconds from numbers or strings with a unit ("90 days", "12 hours", "3600 s").

None (YAML null) means permanent: a rule without a lifetime.
"""

from __future__ import annotations

import re
from fractions import Fraction

from juno_dcs.errors import ConfigError

SECONDS: dict[str, int] = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_DURATION = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)")
_UNIT_LIST = "s, min, h, days, weeks"


class DurationError(ConfigError, ValueError):  # ValueError: also raised in pydantic validators
    """A value that is not a duration; `reason` says why without repeating the value."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"bad duration {value!r}: {reason}")


def parse_duration(value: int | str | None) -> int | None:
    """Seconds from a positive int or a string "N unit" (N may be a decimal); None stays None (permanent)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        kind = "true/false" if isinstance(value, bool) else f"a {type(value).__name__}"
        raise DurationError(value, f"expected seconds, a string such as '90 days', or null, not {kind}")
    if isinstance(value, int):
        seconds = Fraction(value)
    else:
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise DurationError(value, "not a duration; write a number and a unit, e.g. '90 days' or '12 hours'")
        unit = match["unit"] or "s"
        if unit.lower() not in SECONDS:
            raise DurationError(value, f"unknown unit {unit!r} (units: {_UNIT_LIST})")
        seconds = Fraction(match["number"]) * SECONDS[unit.lower()]
    if seconds <= 0:
        raise DurationError(value, "a lifetime must be positive (null means permanent)")
    if seconds.denominator != 1:
        raise DurationError(value, "not a whole number of seconds")
    return int(seconds)


def format_duration(seconds: int | None) -> str:
    """'permanent', '90 days', '12 h', '90 min' or '3601 s': the largest unit that divides exactly."""
    if seconds is None:
        return "permanent"
    for size, unit in ((86400, " days"), (3600, " h"), (60, " min")):
        if seconds % size == 0:
            count = seconds // size
            return f"{count}{' day' if count == 1 and unit == ' days' else unit}"
    return f"{seconds} s"
