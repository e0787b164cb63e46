"""The machine a benchmark ran on, recorded beside its figures.

`machine()` gives the number of cores and a CPU-speed probe: the seconds one core takes for a fixed
20-million-step pure-Python loop (lower is faster). The loop works on module-level names, as the same loop typed
into `python -c "..."` does, which is how the figures quoted before this probe existed were taken (1.2 to 3.5 s
on the machines used so far). The Python version is recorded with it, since the loop's speed depends on it too.

`stamp(result)` adds the UTC date and the machine to a benchmark's result before it is printed, so that
`benchmarks/report.py` can show with every figure when and where it was measured. The probe runs when the result
is written, after the benchmark: a machine still busy shows as a slower one.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from typing import Any

LOOP_STEPS = 20_000_000
_step = 0
_total = 0


def loop_seconds(steps: int = LOOP_STEPS) -> float:
    """Seconds for `steps` additions in a plain Python loop over module-level names, on one core."""
    global _step, _total
    start = time.perf_counter()
    _total = 0
    for _step in range(steps):
        _total += _step
    return round(time.perf_counter() - start, 2)


def machine() -> dict[str, Any]:
    """Cores, the CPU-speed probe and the Python version that ran it."""
    return {"cores": os.cpu_count(), "loop_20m_s": loop_seconds(), "python": platform.python_version()}


def stamp(result: dict[str, Any]) -> dict[str, Any]:
    """`result` with `date` (UTC, ISO) and `machine` added."""
    return {**result, "date": dt.datetime.now(dt.UTC).date().isoformat(), "machine": machine()}
