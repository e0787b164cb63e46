"""Sizes in bytes from numbers or strings with a unit ("500 GB", "2 TiB", "1.5 TB")."""

from __future__ import annotations

import re

UNITS: dict[str, int] = {
    "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50,
}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*)\s*$")


def parse_size(value: object) -> int:
    """Bytes from a non-negative int or a string "N unit"; ValueError says what is wrong."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return value
    if isinstance(value, float):
        raise ValueError(f"{value!r}: give a whole number of bytes or a string with a unit")
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a size")
    if value.strip().startswith("-"):
        raise ValueError(f"{value!r} is negative")
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size (say e.g. '500 GB' or '2 TiB')")
    unit = match["unit"].upper() or "B"
    if unit not in UNITS:
        raise ValueError(f"{value!r}: unknown unit {match['unit']!r} (known: B, kB, MB, GB, TB, PB, KiB .. PiB)")
    return int(float(match["number"]) * UNITS[unit])
