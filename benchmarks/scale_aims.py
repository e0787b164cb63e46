"""The aims of benchmarks/scale.py, checked on its points (pure logic):

1. no throughput falls more than 20 % from the emptiest point to the largest (the ingestor's files_per_s over the
   catalogue's points; the dispatcher's getjob_per_s over its jobs points);
2. every command a person runs by hand answers in under 1 s at the largest point.
"""

from __future__ import annotations

from typing import Any

MAX_DROP = 0.20
MAX_COMMAND_S = 1.0
THROUGHPUTS = {"points": ("files_per_s",), "jobs_points": ("getjob_per_s",)}
COMMANDS = {"points": ("raw_status_day_s", "raw_status_json_all_s", "policy_apply_block_s",
                       "list_dataset_replicas_s", "list_file_replicas_s", "dashboard_blocks_s",
                       "dashboard_stuck_rules_s"),
            "jobs_points": ("jsub_status_10k_s", "prod_status_s")}
SIZE = {"points": "files", "jobs_points": "jobs"}


def aim_texts() -> dict[str, str]:
    """Figure -> its aim in words (the `aims` of every results file, as benchmarks/report.py shows them)."""
    texts = {f: f"falls at most {MAX_DROP:.0%} from the emptiest point" for fs in THROUGHPUTS.values() for f in fs}
    return texts | {f: f"under {MAX_COMMAND_S:g} s at the largest point" for fs in COMMANDS.values() for f in fs}


def largest(points: list[dict[str, Any]], jobs_points: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of the largest catalogue point and of the largest jobs point, in one mapping."""
    out: dict[str, Any] = {}
    for rows, size in ((points, "files"), (jobs_points, "jobs")):
        if rows:
            out |= max(rows, key=lambda r: r[size])
    return out


def aims(points: list[dict[str, Any]], jobs_points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per figure checked: its aim, the values compared and whether the aim is met."""
    out: list[dict[str, Any]] = []
    for kind, rows in (("points", points), ("jobs_points", jobs_points)):
        if not rows:
            continue
        size = SIZE[kind]
        first, last = min(rows, key=lambda r: r[size]), max(rows, key=lambda r: r[size])
        for figure in THROUGHPUTS[kind]:
            base, now = first.get(figure), last.get(figure)
            drop = None if not base or now is None else round(1 - now / base, 3)
            out.append({"figure": figure, "aim": f"falls at most {MAX_DROP:.0%}", size: [first[size], last[size]],
                        "values": [base, now], "drop": drop, "met": drop is not None and drop <= MAX_DROP})
        for figure in COMMANDS[kind]:
            value = last.get(figure)
            out.append({"figure": figure, "aim": f"under {MAX_COMMAND_S:g} s", size: last[size], "value": value,
                        "met": value is not None and value < MAX_COMMAND_S})
    return out
