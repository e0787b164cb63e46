"""What the transfer service recorded of a challenge's copies: per link, when the conveyor submitted them, how
long they waited for a slot and how long each copy took (its API gives times to the second).

`fetch_files` reads them through the service's REST API (the job listing per link, then the jobs' files);
`summarise` turns them into per-link figures (pure)."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
BATCH = 50  # jobs per GET /jobs/ID,ID,...


@dataclass(frozen=True)
class ServiceFile:
    dest_se: str
    submitted: dt.datetime
    started: dt.datetime | None
    finished: dt.datetime | None
    state: str
    verify_checksum: str


@dataclass(frozen=True)
class ServiceLink:
    """One link's copies as the transfer service saw them (seconds; None without finished copies)."""

    files: int
    submission_spread_s: float  # first -> last job submitted by the conveyor
    mean_wait_s: float | None  # submitted -> started
    mean_copy_s: float | None  # started -> finished
    verify_checksum: str

    def as_json(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {"files": self.files, "submission_spread_s": r(self.submission_spread_s),
                "mean_wait_s": r(self.mean_wait_s), "mean_copy_s": r(self.mean_copy_s),
                "verify_checksum": self.verify_checksum}


def _when(text: str | None) -> dt.datetime | None:
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC) if text else None


def fetch_files(get: Callable[[str, dict[str, Any]], Any], source_se: str, dest_ses: Sequence[str],
                marker: str) -> list[ServiceFile]:
    """The service's files of this run (their source URL contains `marker`) copied from `source_se`, from jobs of
    the last hour.
    `get(path, params)` returns the decoded JSON of a GET on the service."""
    found: list[ServiceFile] = []
    for dest in dest_ses:
        jobs = {j["job_id"]: j for j in get("/jobs", {"source_se": source_se, "dest_se": dest, "time_window": 1,
                                                      "limit": 10000})}
        ids = list(jobs)
        for i in range(0, len(ids), BATCH):
            batch = ids[i:i + BATCH]
            answer = get(f"/jobs/{','.join(batch)}",
                         {"files": "source_surl,source_se,dest_se,file_state,start_time,finish_time"})
            for job in answer if isinstance(answer, list) else [answer]:
                for file in job.get("files", []):
                    if marker not in file["source_surl"] or file["source_se"] != source_se:
                        continue
                    submitted = _when(jobs[job["job_id"]]["submit_time"])
                    if submitted is None:
                        continue
                    found.append(ServiceFile(file["dest_se"], submitted, _when(file["start_time"]),
                                             _when(file["finish_time"]), file["file_state"],
                                             str(jobs[job["job_id"]]["verify_checksum"])))
    return found


def summarise(files: Sequence[ServiceFile]) -> dict[str, ServiceLink]:
    """Per destination SE: how many copies, the spread of their submissions, mean wait and mean copy time."""
    by_dest: dict[str, list[ServiceFile]] = {}
    for file in files:
        by_dest.setdefault(file.dest_se, []).append(file)
    out: dict[str, ServiceLink] = {}
    for dest, mine in by_dest.items():
        submitted = [f.submitted for f in mine]
        waits = [(f.started - f.submitted).total_seconds() for f in mine if f.started]
        copies = [(f.finished - f.started).total_seconds() for f in mine if f.started and f.finished]
        out[dest] = ServiceLink(
            files=len(mine), submission_spread_s=(max(submitted) - min(submitted)).total_seconds(),
            mean_wait_s=statistics.fmean(waits) if waits else None,
            mean_copy_s=statistics.fmean(copies) if copies else None,
            verify_checksum=",".join(sorted({f.verify_checksum for f in mine})))
    return out


def submission_spread(files: Sequence[ServiceFile]) -> float:
    """Seconds from the first to the last submission among `files` (0 for none)."""
    if not files:
        return 0.0
    return (max(f.submitted for f in files) - min(f.submitted for f in files)).total_seconds()
