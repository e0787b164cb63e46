"""The challenge's report: HOME/reports/challenge-<UTC time>/ with index.html, result.json and two figures drawn
with matplotlib (Agg): throughput over time per link and in total (as figure 5(a) of the JUNO DCS paper shows
the first data challenge), and the bytes arrived at each destination."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

from juno_dcs.challenge.measure import rate_series
from juno_dcs.challenge.run import ChallengeResult

THROUGHPUT_PNG = "throughput.png"
ARRIVED_PNG = "arrived.png"
WINDOW_S = 2.0  # the throughput curves average over this many seconds


def report_dir(home: Path, now: dt.datetime | None = None) -> Path:
    """A new directory HOME/reports/challenge-<UTC time> (a suffix when two runs share a second)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = home / "reports" / f"challenge-{stamp}"
    target, n = base, 1
    while target.exists():
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    target.mkdir(parents=True)
    return target


def series(result: ChallengeResult) -> dict[str, list[tuple[float, float]]]:
    """Throughput (MB/s) over time per destination and in total ("total"), on the run's clock."""
    times = [tick.t for tick in result.ticks]
    out: dict[str, list[tuple[float, float]]] = {}
    totals = [0] * len(times)
    for link in result.links:
        dest = link.destination
        cumulative = [tick.links[dest].bytes if dest in tick.links else 0 for tick in result.ticks]
        totals = [a + b for a, b in zip(totals, cumulative, strict=True)]
        out[dest] = rate_series(times, cumulative, WINDOW_S)
    out["total"] = rate_series(times, totals, WINDOW_S)
    return out


def draw(result: ChallengeResult, directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = series(result)
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=110)
    for name, points in curves.items():
        style = {"color": "black", "linewidth": 2.2} if name == "total" else {"linewidth": 1.4}
        label = "total" if name == "total" else f"{result.options.source} -> {name}"
        axes.plot([p[0] for p in points], [p[1] for p in points], label=label, **style)
    axes.axhline(result.bare_mb_per_s, color="grey", linestyle=":",
                 label=f"bare copies, {result.bare_mb_per_s:.0f} MB/s")
    axes.set_xlabel("seconds since the first rule was made")
    axes.set_ylabel(f"MB/s ({WINDOW_S:g} s window)")
    axes.set_title(f"Data challenge ({result.options.mode}): {result.options.files} files of "
                   f"{result.options.size / 1e6:g} MB per link")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    throughput = directory / THROUGHPUT_PNG
    figure.savefig(throughput)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=110)
    times = [tick.t for tick in result.ticks]
    for link in result.links:
        dest = link.destination
        axes.plot(times, [tick.links[dest].bytes / 1e6 if dest in tick.links else 0 for tick in result.ticks],
                  label=f"{dest}: bytes at the destination")
        axes.step(times, [tick.links[dest].files_ok * result.options.size / 1e6 if dest in tick.links else 0
                          for tick in result.ticks], where="post", linestyle="--", alpha=0.7,
                  label=f"{dest}: files OK in Rucio")
    axes.set_xlabel("seconds since the first rule was made")
    axes.set_ylabel("MB")
    axes.set_title("Bytes arrived per destination, and what Rucio counted done")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    arrived = directory / ARRIVED_PNG
    figure.savefig(arrived)
    plt.close(figure)
    return [throughput, arrived]


def _row(*cells: object, head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"


def page(result: ChallengeResult) -> str:
    """index.html: the figures, the summary, the links and where the time went."""
    figures = result.as_json()
    phases = figures["phases"]
    links = [_row("link", "files", "MB", "seconds", "MB/s", "bare seconds", "bare MB/s", "submission s",
                  "startup s", "copying s", "finishing s", "peak active", "submissions spread s",
                  "wait for a slot s", "s per copy", "bare s per copy", "checksums", head=True)]
    for link in figures["links"]:
        recorded = link["service"] or {}
        links.append(_row(f"{link['source']} -> {link['destination']}", link["files"], f"{link['bytes'] / 1e6:.0f}",
                          link["seconds"], link["mb_per_s"], link["bare_seconds"], link["bare_mb_per_s"],
                          link["submission_s"], link["startup_s"], link["copying_s"], link["finishing_s"],
                          link["peak_active"], recorded.get("submission_spread_s", ""), recorded.get("mean_wait_s", ""),
                          recorded.get("mean_copy_s", ""), link["bare_mean_copy_s"],
                          recorded.get("verify_checksum", "")))
    where = [
        _row("phase", "seconds", "what", head=True),
        _row("rule made -> rule OK", phases["total_s"], "through Rucio and the transfer service"),
        _row("bare copies", phases["bare_s"], "curl -X COPY, the same bytes and stages"),
        _row("submission", phases["submission_s"], "rule made -> first copy at the transfer service (conveyor "
                                                   "submitter)"),
        _row("startup", phases["startup_s"], "first copy submitted -> first byte at a destination"),
        _row("copying", phases["copying_s"], "first byte -> last byte"),
        _row("submissions spread", phases["submission_spread_s"], "first -> last copy submitted by the conveyor (one "
                                                                  "job per file; overlaps the copying)"),
        _row("copy excess", phases["copy_excess_s"], f"copying - bare copies ({phases['copy_excess_per_file_s']} s "
                                                     "per file)"),
        _row("finishing", phases["finishing_s"], "last byte -> rule OK (completion message, receiver, finisher, "
                                                 "judge)"),
    ]
    summary = [
        _row("mode", figures["mode"]), _row("files per link", figures["files"]),
        _row("file size (bytes)", figures["size_bytes"]), _row("bare copies per link at once", figures["concurrency"]),
        _row("dataset", figures["dataset"]), _row("total MB/s (Rucio)", figures["total_mb_per_s"]),
        _row("bare MB/s", figures["bare_mb_per_s"]), _row("challenge ratio (total / bare)", figures["challenge_ratio"]),
        _row("samples", figures["samples"]),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>JUNO data challenge {html.escape(figures['mode'])}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} th{{background:#eee}} td:first-child{{text-align:left}}
</style></head><body>
<h1>Data challenge: {html.escape(figures['source'])} to {len(figures['links'])} destinations,
{html.escape(figures['mode'])}</h1>
<table>{''.join(summary)}</table>
<h2>Throughput over time</h2>
<img src="{THROUGHPUT_PNG}" alt="throughput per link and in total">
<h2>Links</h2>
<table>{''.join(links)}</table>
<h2>Where the time went</h2>
<table>{''.join(where)}</table>
<p>Per link, "wait for a slot" and "s per copy" are the transfer service's own record (to the second): the mean
time a copy waited between its submission and its start, and the mean time it ran, checksums included; "bare s per
copy" is one curl COPY's time at the bare concurrency.</p>
<h2>Bytes arrived</h2>
<img src="{ARRIVED_PNG}" alt="bytes arrived per destination">
<p>The figures as JSON: <a href="result.json">result.json</a>.</p>
</body></html>
"""


def write(result: ChallengeResult, home: Path) -> Path:
    """The report's directory with index.html, result.json and the figures; returns index.html."""
    directory = report_dir(home)
    draw(result, directory)
    index = directory / "index.html"
    (directory / "result.json").write_text(json.dumps({**result.as_json(), "report": str(index)}, indent=2) + "\n")
    index.write_text(page(result))
    return index
