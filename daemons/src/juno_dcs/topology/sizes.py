"""Sizes in bytes from numbers or strings with a unit ("500 GB", "2 TiB", "1.5 TB")."""

from __future__ import annotations

import re
from fractions import Fraction

from juno_dcs.errors import ConfigError

DECIMAL_UNITS: dict[str, int] = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
BINARY_UNITS: dict[str, int] = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
UNITS: dict[str, int] = {**DECIMAL_UNITS, **BINARY_UNITS}
_UNIT_LIST = "B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB"
_BY_UPPER = {unit.upper(): unit for unit in UNITS if unit != "KB"}  # the spelling to suggest for a wrong case
_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)")


class SizeError(ConfigError, ValueError):  # ValueError: also raised in pydantic validators
    """A value that is not a size; `reason` says why without repeating the value."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"bad size {value!r}: {reason}")


def parse_size(value: int | str) -> int:
    """Bytes from a non-negative int or a string "N unit" / "Nunit" (N may be a decimal)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        kind = "true/false" if isinstance(value, bool) else f"a {type(value).__name__}"
        raise SizeError(value, f"expected a whole number of bytes or a string such as '500 GB', not {kind}")
    if isinstance(value, int):
        if value < 0:
            raise SizeError(value, "a size cannot be negative")
        return value
    text = value.strip()
    if text.startswith("-"):
        raise SizeError(value, "a size cannot be negative")
    match = _SIZE.fullmatch(text)
    if match is None:
        raise SizeError(value, "not a size; write a number and a unit, e.g. '500 GB' or '2 TiB'")
    unit = match["unit"] or "B"
    if unit not in UNITS:
        hint = f"; did you mean {_BY_UPPER[unit.upper()]!r}?" if unit.upper() in _BY_UPPER else ""
        raise SizeError(value, f"unknown unit {unit!r} (units: {_UNIT_LIST}){hint}")
    size = Fraction(match["number"]) * UNITS[unit]
    if size.denominator != 1:
        raise SizeError(value, "not a whole number of bytes")
    return int(size)
