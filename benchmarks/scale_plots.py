"""The curves of benchmarks/scale.py as PNG files: one plot per group of figures against the catalogue's size (or
the dispatcher's jobs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CATALOGUE = {
    "scale-ingest": ("Ingest throughput", "files/s", ("files_per_s", "fill_files_per_s")),
    "scale-latency": ("Ingest latency", "s", ("latency_p50_s", "latency_p99_s")),
    "scale-commands": ("Commands and panels", "s", ("raw_status_day_s", "raw_status_json_all_s",
                                                    "policy_apply_block_s", "list_dataset_replicas_s",
                                                    "list_file_replicas_s", "dashboard_blocks_s",
                                                    "dashboard_stuck_rules_s", "rule_10k_locks_s")),
    "scale-cost": ("Server and database CPU per 1,000 files ingested", "CPU s", ("server_db_cpu_s_per_1000_files",)),
    "scale-database": ("Database size", "GB", ("database_gb",)),
}
DISPATCHER = {
    "scale-dispatcher": ("Dispatcher", "s", ("submit_10k_s", "jsub_status_10k_s", "jsub_status_jobs_10k_s",
                                                  "prod_status_s")),
    "scale-getjob": ("Dispatcher getJob", "jobs/s", ("getjob_per_s",)),
}


def _plot(rows: list[dict[str, Any]], x: str, title: str, unit: str, figures: tuple[str, ...], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for figure in figures:
        pts = [(r[x] / 1e6, r[figure]) for r in rows if r.get(figure) is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=figure)
            drawn = True
    if drawn:
        ax.set_title(title)
        ax.set_xlabel(f"{x} in the tables (millions)")
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=90)
    plt.close(fig)
    return drawn


def plot_all(result: dict[str, Any], directory: Path) -> list[Path]:
    """Every plot that has data; their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    points = [dict(p, database_gb=p["database_bytes"] / 1e9) for p in result.get("points", [])]
    made = []
    for rows, x, table in ((points, "files", CATALOGUE), (result.get("jobs_points", []), "jobs", DISPATCHER)):
        for name, (title, unit, figures) in table.items():
            path = directory / f"{name}.png"
            if rows and _plot(rows, x, title, unit, figures, path):
                made.append(path)
    return made
