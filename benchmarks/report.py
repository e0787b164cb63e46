"""The benchmarks' last results as Markdown: one table per benchmark, figure | value | aim | date | machine.

Reads every `benchmarks/results/*.json` (each is the JSON object one script of `benchmarks/` printed) and prints
the tables; `--write` puts them into README.md between `<!-- figures:begin -->` and `<!-- figures:end -->`.

An aim comes from the result's own `aims` object (figure key -> text) where it has one, else from `AIMS` below.
`date` and `machine` are written by `machine.stamp`; for a result without them the date is that of the commit
that last changed the file, marked "(committed)", and the machine shows the cores if the result has `cpus`.

    .venv/bin/python benchmarks/report.py [--write]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Figure:
    """One row. `label` may name fields of the result (`{jobs:,}`, `{production[jobs]}`); `paths` are dotted
    paths to the values (several are shown as `a / b / c`); `samples` a dotted path to every run's value."""

    label: str
    paths: tuple[str, ...]
    unit: str = ""
    scale: float = 1.0
    samples: str | None = None

    @property
    def key(self) -> str:
        """The name of the figure in `aims`: the last part of its first path."""
        return self.paths[0].rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Benchmark:
    title: str
    note: str
    figures: tuple[Figure, ...]


def _grid(label: str, key: str, unit: str = "s", scale: float = 1.0) -> Figure:
    return Figure(label, (f"median.{key}",), unit, scale, f"samples.{key}")


def _ways(point: str, key: str) -> tuple[str, ...]:
    return tuple(f"{point}.{way}.{key}" for way in ("direct", "service", "squid"))


BENCHMARKS: dict[str, Benchmark] = {
    "grid_up": Benchmark("A grid's life cycle", "median of {runs} runs on fresh homes", (
        _grid("`up` of a new grid: database, Rucio schema, processes, topology (`up_cold_s`)", "up_cold_s"),
        _grid("`up` again on a running grid, nothing to change (`up_warm_s`)", "up_warm_s"),
        _grid("`status --json` (`status_s`)", "status_s"),
        _grid("`down` (`down_s`)", "down_s"),
        _grid("`up` of a stopped grid (`up_stopped_s`)", "up_stopped_s"),
        _grid("`down --purge` (`down_purge_s`)", "down_purge_s"),
        _grid("memory of a running grid, RSS of all its processes (`rss_total_mib`)", "rss_total_mib", "GiB",
              1 / 1024),
    )),
    "transfers": Benchmark("Transfers", "1 GiB copies: median of {tpc_runs} alternating runs", (
        Figure("1 GiB IHEP_DISK -> CNAF_DISK, service over bare `curl -X COPY` pull (`tpc_ratio`)",
               ("tpc_ratio",)),
        Figure("the same with adler32 verified on both sides (`tpc_ratio_with_checksum`)",
               ("tpc_ratio_with_checksum",)),
        Figure("1 GiB throughput: service / service with adler32 / bare",
               ("tpc_mb_s_median.service", "tpc_mb_s_median.service_checksum", "tpc_mb_s_median.bare"), "MB/s"),
        Figure("{rule_files:,} files of 1 MB, one rule IHEP_DISK -> CNAF_DISK (`rule_files_per_s`)",
               ("rule_files_per_s",), "files/s"),
        Figure("that rule's latency, creation to OK (`rule_latency_s`)", ("rule_latency_s",), "s"),
        Figure("rules of {rule_pair_files} files with tokens (`rule_files_per_s_tokens_on`), median of "
               "{rule_pair_runs}", ("rule_files_per_s_tokens_on",), "files/s", samples="rule_files_per_s_samples.on"),
        Figure("the same between SEs and a transfer API that check nothing (`rule_files_per_s_tokens_off`)",
               ("rule_files_per_s_tokens_off",), "files/s", samples="rule_files_per_s_samples.off"),
        Figure("what tokens cost rules, 1 - on/off: of the medians / median of the back-to-back pairs "
               "(`rule_token_cost`)", ("rule_token_cost", "rule_token_cost_pairs")),
    )),
    "challenge": Benchmark("Data challenge", "`juno-dcs challenge`: {parallel[files]} files of "
                           "{parallel[size_bytes]:,} bytes from IHEP_DISK to CNAF_DISK, JINR_DISK and IN2P3_DISK; the "
                           "machine's load average before: {load_avg_1m_before[parallel]} (parallel), "
                           "{load_avg_1m_before[each]} (each)", (
        Figure("parallel: through Rucio and the transfer service / bare `curl -X COPY` (`total_mb_per_s`)",
               ("parallel.total_mb_per_s", "parallel.bare_mb_per_s"), "MB/s"),
        Figure("parallel: total over bare (`challenge_ratio`)", ("parallel.challenge_ratio",)),
        Figure("each T1 after the other: through Rucio / bare", ("each.total_mb_per_s", "each.bare_mb_per_s"), "MB/s"),
        Figure("each: total over bare", ("each.challenge_ratio",)),
        Figure("parallel: submission / copying / bare copying / finishing",
               ("parallel.phases.submission_s", "parallel.phases.copying_s", "parallel.phases.bare_s",
                "parallel.phases.finishing_s"), "s"),
        Figure("parallel: the conveyor's submissions spread over", ("parallel.phases.submission_spread_s",), "s"),
        Figure("500 MB files, parallel (machine loop 1.1 to 1.7 s), total over bare: checksums verified, two "
               "runs / not verified (`--checksums none`), two runs",
               ("checksums_500MB.runs.0.challenge_ratio", "checksums_500MB.runs.2.challenge_ratio",
                "checksums_500MB.runs.1.challenge_ratio", "checksums_500MB.runs.3.challenge_ratio")),
    )),
    "deploy": Benchmark("The grid on Docker Swarm", "`benchmarks/deploy.py`: images on the {storage_driver} storage "
                        "driver; box and stack up side by side, figures alternately, medians of {runs} runs", (
        Figure("images from nothing: base (mmdebstrap), runtime, role tags (`build_cold_s`)", ("build_cold_s",), "s"),
        Figure("images again, nothing changed (`build_cached_s`)", ("build_cached_s",), "s"),
        Figure("images on disk: the base, the runtime image that every role of the grid's software shares, and "
               "the databases' own layers (`distinct_mb`)", ("distinct_mb",), "MB"),
        Figure("`up` of a new grid, stack / box (`up_stack_s`)", ("up_stack_s", "up_box_s"), "s"),
        Figure("memory of the idle grid, stack (containers) / box (supervisord's tree) (`memory_stack_mb`)",
               ("memory_stack_mb", "memory_box_mb"), "MiB"),
        Figure("memory of the stack's own PostgreSQL and MariaDB, idle (the box's are the machine's, not counted "
               "above) (`memory_stack_databases_mb`)", ("memory_stack_databases_mb",), "MiB"),
        Figure("a rule of {rule_files} files IHEP_DISK -> CNAF_DISK, stack / box (`rule_files_per_s_stack`)",
               ("rule_files_per_s_stack", "rule_files_per_s_box"), "files/s", samples="rule_files_per_s_stack_runs"),
        Figure("that, stack over box (`rule_files_per_s_stack_over_box`)", ("rule_files_per_s_stack_over_box",)),
        Figure("ingest of {messages:,} waiting messages, stack / box (`ingest_files_per_s_stack`)",
               ("ingest_files_per_s_stack", "ingest_files_per_s_box"), "files/s",
               samples="ingest_files_per_s_stack_runs"),
        Figure("that, stack over box (`ingest_files_per_s_stack_over_box`)", ("ingest_files_per_s_stack_over_box",)),
        Figure("one stack, the services that run twice at 2 / at 1 replica, the same rule (`--only replicas`, "
               "{replicas_pair[runs]} runs each)", ("rule_files_per_s_replicas_2", "rule_files_per_s_replicas_1"),
               "files/s", samples="rule_files_per_s_replicas_runs.2"),
    )),
    "ingest": Benchmark("Ingest", "the ingestor alone: Kafka -> Rucio registration and attachment", (
        Figure("{throughput[messages]:,} messages waiting in Kafka, registered and attached into daily blocks "
               "(`files_per_s`)", ("files_per_s",), "files/s"),
        Figure("steady {latency[rate_per_s]:g} messages/s for {latency[seconds]:g} s, publish -> registered, p50 "
               "(`latency_p50_s`)", ("latency_p50_s",), "s"),
        Figure("the same, p99 (`latency_p99_s`)", ("latency_p99_s",), "s"),
        Figure("the same, slowest file (`latency_max_s`)", ("latency.latency_max_s",), "s"),
        Figure("{checked_messages:,} files each checked at IHEP_DISK with the raw-data service's token first "
               "(`checked_files_per_s_tokens_on`), median of {checked_runs}", ("checked_files_per_s_tokens_on",),
               "files/s", samples="checked_files_per_s_samples.on"),
        Figure("the same at an SE that checks nothing, without a token (`checked_files_per_s_tokens_off`)",
               ("checked_files_per_s_tokens_off",), "files/s", samples="checked_files_per_s_samples.off"),
        Figure("what tokens cost ingest, 1 - on/off: of the medians / median of the back-to-back pairs "
               "(`checked_token_cost`)", ("checked_token_cost", "checked_token_cost_pairs")),
    )),
    # the default run's points are RTT 0, 50 and 180 ms: points.2 is the 180 ms one
    "conditions": Benchmark("Conditions", "jobs at a remote site, IHEP across an emulated round trip: "
                            "{rate_per_s:g} jobs/s for {seconds:g} s per way, a new run every {run_every_s:g} s, "
                            "{folders} folders (78 kB) per job; one run", (
        Figure("a job's warm p50 at {points[2][rtt_ms]:g} ms: direct MariaDB / the service / the site's Squid",
               _ways("points.2", "warm_p50_ms"), "ms"),
        Figure("a job's warm p99, the same", _ways("points.2", "warm_p99_ms"), "ms"),
        Figure("a job's cold p50 (first job of a new run at the site), the same", _ways("points.2", "cold_p50_ms"),
               "ms"),
        Figure("direct warm p50 / Squid warm p50 at {points[0][rtt_ms]:g} / {points[1][rtt_ms]:g} / "
               "{points[2][rtt_ms]:g} ms (`squid_speedup`)", tuple(f"points.{i}.squid_speedup" for i in range(3))),
        Figure("MariaDB queries/s at {points[2][rtt_ms]:g} ms: direct / the service / Squid",
               _ways("points.2", "db_queries_per_s")),
        Figure("MariaDB queries/s, direct over Squid (`db_queries_direct_over_squid`)",
               ("points.2.db_queries_direct_over_squid",)),
        Figure("HTTP requests of a cold read at a site: now / before (`http_requests`)",
               ("points.2.cold_read.http_requests", "points.2.cold_read_before.http_requests")),
        Figure("that cold read at {points[2][rtt_ms]:g} ms in round trips: now / before",
               ("points.2.cold_read.round_trips", "points.2.cold_read_before.round_trips")),
        Figure("closed loop at {points[2][rtt_ms]:g} ms, reads/s: direct / the service / Squid",
               tuple(f"points.2.saturation.{way}.reads_per_s" for way in ("direct", "service", "squid"))),
        Figure("the site's Squid down: a job's p50 through the service across the link, times slower "
               "(`slowdown_warm_p50`)", ("failover.squid_down.slowdown_warm_p50",)),
        Figure("link cut {failover[link_cut][outage_s]:g} s: jobs that needed it, finished / failed",
               ("failover.link_cut.jobs_ok", "failover.link_cut.errors")),
    )),
    "wms": Benchmark("Workload management", "median of {runs} runs; {server_workers} server workers", (
        Figure("a task of {jobs:,} jobs through POST /v1/tasks (`submit_10k_s`)", ("submit_10k_s",), "s",
               samples="submit_runs_s"),
        Figure("getJob with {pilots} concurrent pilots, tokens checked (`getjob_per_s`)", ("getjob_per_s",),
               "jobs/s", samples="getjob_runs_per_s"),
        Figure("the same with token checks off (`getjob_per_s_tokens_off`)", ("getjob_per_s_tokens_off",),
               "jobs/s", samples="getjob_runs_per_s_tokens_off"),
        Figure("what token checks cost getJob, 1 - on/off: of the medians / median of the back-to-back pairs "
               "(`getjob_token_cost`)", ("getjob_token_cost", "getjob_token_cost_pairs")),
        Figure("the server's work per call for a token seen before (`token_check_us`)", ("token_check_us",), "us"),
        Figure("a {production[jobs]}-job production detsim -> elecsim -> cal -> rec, submission to the final rule "
               "OK (`production_{production[jobs]}_s`)", ("production.production_s",), "s"),
        Figure("its steps closed at: detsim / elecsim / cal / rec",
               tuple(f"production.steps_closed_at_s.{step}" for step in ("detsim", "elecsim", "cal", "rec")), "s"),
    )),
    "tokens": Benchmark("Tokens", "a running grid; medians of alternating calls", (
        Figure("the issuer's grants, one client in turn / 4 threads (`grants_per_s`)",
               ("grants_per_s", "grants_per_s_4_threads"), "tokens/s"),
        Figure("a token's check: signature / a token seen before (`verify_per_s`)",
               ("verify_per_s", "verify_cached_per_s"), "checks/s"),
        Figure("the transfer service: `GET /` without a token / `GET /whoami` with one",
               ("fts_open_ms", "fts_auth_ms"), "ms"),
        Figure("the transfer service's keeper: an exchange for a refresh token / a refresh (`exchange_ms`)",
               ("exchange_ms", "refresh_ms"), "ms"),
    )),
    "scale": Benchmark("At scale", "the largest points measured: {largest[files]:,} files in the catalogue, "
                       "{largest[jobs]:,} jobs in the dispatcher", (
        Figure("ingest at that size (`files_per_s`)", ("largest.files_per_s",), "files/s"),
        Figure("ingest latency p99 (`latency_p99_s`)", ("largest.latency_p99_s",), "s"),
        Figure("`juno-dcs raw status --day D` (`raw_status_day_s`)", ("largest.raw_status_day_s",), "s"),
        Figure("`juno-dcs raw status --json`, every block (`raw_status_json_all_s`)",
               ("largest.raw_status_json_all_s",), "s"),
        Figure("`rucio replica list dataset` / `file` of a block (`list_dataset_replicas_s`)",
               ("largest.list_dataset_replicas_s", "largest.list_file_replicas_s"), "s"),
        Figure("dashboard raw blocks panel (`dashboard_blocks_s`)", ("largest.dashboard_blocks_s",), "s"),
        Figure("`juno-dcs placement apply` of a new block (`policy_apply_block_s`)",
               ("largest.policy_apply_block_s",), "s"),
        Figure("the catalogue's database (`database_bytes_per_million_files`)",
               ("largest.database_bytes_per_million_files",), "GB per million files", 1e-9),
        Figure("dispatcher: getJob (`getjob_per_s`)", ("largest.getjob_per_s",), "jobs/s"),
        Figure("dispatcher: what `jsub status` asks of a 10,000-job task (`jsub_status_10k_s`)",
               ("largest.jsub_status_10k_s",), "s"),
        Figure("dispatcher: `juno-prod status` of a 4-step production (`prod_status_s`)",
               ("largest.prod_status_s",), "s"),
    )),
    "soak": Benchmark("A grid left running under ingest", "{days_of_raw_data} days of JUNO's raw data "
                      "({published:,} files) in {settings[minutes]:.0f} minutes on the 4-million-file grid; "
                      "first window / last window", (
        Figure("ingest latency p99 (`latency_p99_s`)", ("first.latency_p99_s", "last.latency_p99_s"), "s"),
        Figure("`juno-dcs raw status --day D` (`raw_status_day_s`)",
               ("first.raw_status_day_s", "last.raw_status_day_s"), "s"),
        Figure("dashboard raw blocks panel (`dashboard_blocks_s`)",
               ("first.dashboard_blocks_s", "last.dashboard_blocks_s"), "s"),
        Figure("database growth per JUNO day of 1,000 raw files (`database_bytes_per_juno_day`)",
               ("database_bytes_per_juno_day",), "MB", 1e-6),
        Figure("the grid's memory, last window against first (`grid_rss_bytes_change`)",
               ("grid_rss_bytes_change",), "MB", 1e-6),
    )),
}

# The aims the project set, by benchmark and figure key; a result's own `aims` object takes precedence.
AIMS: dict[str, dict[str, str]] = {
    "challenge": {"challenge_ratio": ">= 0.8"},
    "transfers": {"tpc_ratio": ">= 0.8", "rule_files_per_s": ">= 50 files/s", "rule_token_cost": "<= 0.10"},
    "ingest": {"files_per_s": ">= 1,000 files/s", "latency_p99_s": "< 2 s", "checked_token_cost": "<= 0.10"},
    "conditions": {"squid_speedup": ">= 20 at 180 ms (the paper saw > 10)"},
    "soak": {k: "last within 20 % (or 0.2 s) of first" for k in
             ("latency_p99_s", "raw_status_day_s", "dashboard_blocks_s")},
    "wms": {"submit_10k_s": "about 1 s", "getjob_per_s": ">= 1,000 jobs/s", "getjob_token_cost": "<= 0.10"},
}


def lookup(result: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (a number indexes a list), or None where any part is missing."""
    value: Any = result
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return None
    return value


def number(value: float) -> str:
    """A figure as the README writes it, halves rounded up: 1,030 / 18.0 / 0.75 / 0.096."""
    exact = Decimal(repr(value))
    with localcontext(rounding=ROUND_HALF_UP):
        if isinstance(value, int) or abs(exact) >= 100:
            return f"{exact:,.0f}"
        if abs(exact) >= 10:
            return f"{exact:.1f}"
        return f"{exact:.2g}"


def fill(template: str, result: Mapping[str, Any]) -> str:
    """`template` with the result's fields put in; unchanged where a field is missing."""
    try:
        return template.format_map(result)
    except (KeyError, IndexError, TypeError, ValueError):
        return template


def value_text(figure: Figure, result: Mapping[str, Any]) -> str:
    values = [lookup(result, path) for path in figure.paths]
    if all(v is None for v in values):
        return "not in the results"
    text = " / ".join("?" if v is None else number(v * figure.scale) for v in values)
    if figure.unit:
        text += f" {figure.unit}"
    runs = lookup(result, figure.samples) if figure.samples else None
    if isinstance(runs, list) and len(runs) > 1:
        text += " (runs: " + ", ".join(number(r * figure.scale) for r in runs) + ")"
    return text


def machine_text(result: Mapping[str, Any]) -> str:
    found = result.get("machine")
    if isinstance(found, Mapping):
        loop = found.get("loop_20m_s")
        return f"{found.get('cores', '?')} cores, loop {NOT_RECORDED if loop is None else f'{loop} s'}"
    cores = result.get("cpus")
    return NOT_RECORDED if cores is None else f"{cores} cores, loop {NOT_RECORDED}"


def date_text(result: Mapping[str, Any], committed: str | None) -> str:
    if isinstance(result.get("date"), str):
        return str(result["date"])
    return NOT_RECORDED if committed is None else f"{committed} (committed)"


def rows(name: str, result: Mapping[str, Any], committed: str | None = None) -> list[tuple[str, str, str, str, str]]:
    """One benchmark's table rows: (figure, value, aim, date, machine)."""
    spec = BENCHMARKS.get(name)
    figures = spec.figures if spec else tuple(
        Figure(f"`{key}`", (key,)) for key, value in result.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and key != "cpus")
    aims = {**AIMS.get(name, {}), **(result.get("aims") or {})}
    date, machine = date_text(result, committed), machine_text(result)
    if "error" in result:
        return [("error", str(result["error"]), "", date, machine)]
    return [(fill(f.label, result), value_text(f, result), aims.get(f.key, ""), date, machine) for f in figures]


def table(name: str, result: Mapping[str, Any], committed: str | None = None) -> str:
    """One benchmark's heading, note and table, in Markdown."""
    spec = BENCHMARKS.get(name)
    title = spec.title if spec else name
    lines = [f"### {title}: `benchmarks/{name}.py`", ""]
    if spec:
        note = fill(spec.note, result)
        lines += [note[:1].upper() + note[1:] + ".", ""]
    lines += ["| figure | value | aim | date | machine |", "| --- | --- | --- | --- | --- |"]
    for row in rows(name, result, committed):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines)


def report(results: Mapping[str, tuple[Mapping[str, Any], str | None]]) -> str:
    """Every benchmark's table: known ones in the README's order, then any others by name."""
    order = [n for n in BENCHMARKS if n in results] + sorted(n for n in results if n not in BENCHMARKS)
    return "\n\n".join(table(n, *results[n]) for n in order) + "\n"


def replace_between(text: str, generated: str) -> str:
    """`text` with everything between the two markers replaced by `generated`."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md needs {BEGIN} followed by {END}")
    return text[: start + len(BEGIN)] + "\n" + generated + text[end:]


def committed_date(path: Path) -> str | None:
    """The date of the last commit that changed `path`, or None if it has none."""
    proc = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%cs", "--", str(path)],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() or None


def load(directory: Path = RESULTS) -> dict[str, tuple[dict[str, Any], str | None]]:
    """Every results file by benchmark name (its `benchmark` field, else the file's name), with its commit date."""
    found: dict[str, tuple[dict[str, Any], str | None]] = {}
    for path in sorted(directory.glob("*.json")):
        result = json.loads(path.read_text())
        found[str(result.get("benchmark", path.stem))] = (result, committed_date(path))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="replace the tables between the markers in README.md")
    generated = report(load())
    if parser.parse_args().write:
        README.write_text(replace_between(README.read_text(), generated))
    else:
        sys.stdout.write(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
