"""One data challenge on a running grid: prepare the files, copy them bare, replicate them through Rucio and the
transfer service, sample both sides, and give the figures (`ChallengeResult`).

    prepare   N files of SIZE written at the source (IHEP_DISK), registered in one raw block
    bare      the same bytes by `curl -X COPY` to each destination (juno_dcs.challenge.bare), timed per stage
    rucio     one rule per destination, as root; every `interval` seconds: bytes at each destination, the rules'
              locks OK, the transfer service's active and queued copies per link (its /snapshot), until OK
    clean     rules, replicas and files removed (unless kept)

A stage is the links that run together: all destinations in `parallel` mode, one after another in `each` mode.
The bare copies run in the same stages at `concurrency` copies per link, after the source files were read once
(both sides then read them from the page cache) and with the page cache written back between phases.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import requests

from juno_dcs.challenge import bare, service
from juno_dcs.challenge.data import ChallengeData, give_to_xrootd, prepare, remove
from juno_dcs.challenge.measure import (
    LinkSample,
    Phases,
    Tick,
    link_phases,
    mb_per_s,
    peak_active,
    stage_phases,
)
from juno_dcs.challenge.service import ServiceLink
from juno_dcs.errors import ConfigError, GridStateError, ServiceError, ServiceTimeout
from juno_dcs.grid.home import GridHome
from juno_dcs.settings import GridSettings

Mode = Literal["parallel", "each"]
Progress = Callable[[str], None]
SOURCE = "IHEP_DISK"
DESTINATIONS = ("CNAF_DISK", "JINR_DISK", "IN2P3_DISK")
BARE_AREA = "/challenge"


@dataclass(frozen=True)
class ChallengeOptions:
    files: int
    size: int
    mode: Mode
    concurrency: int | None = None  # bare copies per link; default: the transfer service's starting limit
    interval: float = 0.5
    keep: bool = False
    timeout: float | None = None  # for the Rucio phase; default from the bytes to move
    source: str = SOURCE
    destinations: tuple[str, ...] = DESTINATIONS

    def __post_init__(self) -> None:
        if not 1 <= self.files <= 99_999:
            raise ConfigError(f"--files {self.files}: give 1 to 99999 files")
        if self.size < 1:
            raise ConfigError(f"--size {self.size}: a file has at least one byte")
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError(f"--concurrency {self.concurrency}: at least one copy at a time")
        if self.interval <= 0:
            raise ConfigError(f"--interval {self.interval}: must be more than 0 seconds")
        if not self.destinations or self.source in self.destinations:
            raise ConfigError("the destinations must be other RSEs than the source")

    def stages(self) -> list[tuple[str, ...]]:
        return [self.destinations] if self.mode == "parallel" else [(d,) for d in self.destinations]


@dataclass(frozen=True)
class LinkResult:
    source: str
    destination: str
    files: int
    bytes: int
    seconds: float  # rule made -> rule OK
    bare_seconds: float
    bare_mean_copy_s: float  # one bare copy's seconds, on average
    phases: Phases
    peak_active: int
    service: ServiceLink | None  # the transfer service's record of the link's copies

    @property
    def mb_per_s(self) -> float:
        return mb_per_s(self.bytes, self.seconds)

    @property
    def bare_mb_per_s(self) -> float:
        return mb_per_s(self.bytes, self.bare_seconds)


@dataclass(frozen=True)
class ChallengeResult:
    options: ChallengeOptions
    concurrency: int
    dataset: str
    prepare_seconds: float
    links: list[LinkResult]
    stages: list[Phases]  # the Rucio side of each stage
    bare_stage_seconds: list[float]
    submission_spread_s: float  # first -> last copy submitted to the transfer service, summed over the stages
    ticks: list[Tick]
    rules: dict[str, str]  # destination -> rule id
    source_rule: str  # the rule that holds the files at the source
    cleaned: bool = False
    cleanup_problems: list[str] = field(default_factory=list)
    report: Path | None = None

    @property
    def total_bytes(self) -> int:
        return sum(link.bytes for link in self.links)

    @property
    def total_seconds(self) -> float:
        return sum(stage.total_s for stage in self.stages)

    @property
    def bare_seconds(self) -> float:
        return sum(self.bare_stage_seconds)

    @property
    def total_mb_per_s(self) -> float:
        return mb_per_s(self.total_bytes, self.total_seconds)

    @property
    def bare_mb_per_s(self) -> float:
        return mb_per_s(self.total_bytes, self.bare_seconds)

    @property
    def ratio(self) -> float:
        return self.total_mb_per_s / self.bare_mb_per_s if self.bare_mb_per_s else 0.0

    def breakdown(self) -> dict[str, float]:
        """Where the time between rule creation and rule OK went, summed over the stages, against the bare copies'
        time: `submission_s` (rule made -> first copy at the transfer service: the conveyor's submitter),
        `startup_s` (-> first byte at a destination), `copying_s` (first -> last byte), `finishing_s` (last byte
        -> rule OK: completion message, receiver, finisher, judge), `copy_excess_s` = copying - bare, and that
        per file moved; `submission_spread_s`: first -> last copy submitted (the conveyor submits one file per
        job, one after the other; to the second), which overlaps the copying."""
        copying = sum(s.copying_s for s in self.stages)
        moved = sum(link.files for link in self.links)
        excess = copying - self.bare_seconds
        return {
            "total_s": self.total_seconds,
            "bare_s": self.bare_seconds,
            "submission_s": sum(s.submission_s for s in self.stages),
            "startup_s": sum(s.startup_s for s in self.stages),
            "copying_s": copying,
            "copy_excess_s": excess,
            "copy_excess_per_file_s": excess / moved if moved else 0.0,
            "finishing_s": sum(s.finishing_s for s in self.stages),
            "submission_spread_s": self.submission_spread_s,
        }

    def as_json(self) -> dict[str, Any]:
        def r(x: float) -> float:
            return round(x, 3)

        return {
            "mode": self.options.mode,
            "files": self.options.files,
            "size_bytes": self.options.size,
            "concurrency": self.concurrency,
            "source": self.options.source,
            "dataset": f"raw:{self.dataset}",
            "total_bytes": self.total_bytes,
            "total_seconds": r(self.total_seconds),
            "total_mb_per_s": r(self.total_mb_per_s),
            "bare_seconds": r(self.bare_seconds),
            "bare_mb_per_s": r(self.bare_mb_per_s),
            "challenge_ratio": r(self.ratio),
            "prepare_seconds": r(self.prepare_seconds),
            "phases": {k: r(v) for k, v in self.breakdown().items()},
            "links": [{"source": link.source, "destination": link.destination, "files": link.files,
                       "bytes": link.bytes, "seconds": r(link.seconds), "mb_per_s": r(link.mb_per_s),
                       "bare_seconds": r(link.bare_seconds), "bare_mb_per_s": r(link.bare_mb_per_s),
                       "submission_s": r(link.phases.submission_s), "startup_s": r(link.phases.startup_s),
                       "copying_s": r(link.phases.copying_s), "finishing_s": r(link.phases.finishing_s),
                       "bare_mean_copy_s": r(link.bare_mean_copy_s), "peak_active": link.peak_active,
                       "service": link.service.as_json() if link.service else None} for link in self.links],
            "rules": self.rules,
            "source_rule": self.source_rule,
            "samples": len(self.ticks),
            "cleaned": self.cleaned,
            "cleanup_problems": self.cleanup_problems,
            "report": str(self.report) if self.report else None,
        }


class _Grid:
    """The grid's pieces the challenge talks to: Rucio's client as root, the transfer service, tokens."""

    def __init__(self, settings: GridSettings) -> None:
        from juno_dcs.clikit import use_rucio_config
        from juno_dcs.grid import issuer
        from juno_dcs.grid.launcher import grid_ca
        from juno_dcs.grid.pki import cert_dir
        from juno_dcs.tokens.fetch import TokenSource

        self.home = GridHome(settings.home)
        if not self.home.exists():
            raise GridStateError(f"no grid in {self.home.root}: run `juno-dcs up` first")
        state = self.home.load_state()
        use_rucio_config(self.home.client_cfg("root"))
        from rucio.client import Client

        self.client: Any = Client()
        self.ca_file = grid_ca(settings)
        self.ca_dir = cert_dir(settings.pki_dir)
        layout = issuer.layout(self.home, state)
        self._root = TokenSource(issuer.credentials(layout, state, "root"))
        self._rucio = TokenSource(issuer.credentials(layout, state, "rucio"))  # as the conveyor gets them
        self._fts_audience = issuer.FTS_AUDIENCE
        self._storage_audience = issuer.STORAGE_AUDIENCE
        self.session = requests.Session()
        self.fts_url = ""

    def get(self, path: str, params: dict[str, Any]) -> Any:
        """The decoded answer of a GET on the transfer service (207 multi-status included)."""
        reply = self.session.get(f"{self.fts_url}{path}", params=params, headers=self.fts_headers(),
                                 verify=str(self.ca_file), timeout=60)
        if reply.status_code not in (200, 207):
            raise ServiceError(f"the transfer service answered {reply.status_code} to GET {path}: "
                               f"{reply.text[:200]}")
        return reply.json()

    def fts_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._root.get(self._fts_audience, 'fts').value}"}

    def storage_tokens(self) -> tuple[str, str]:
        """(source, destination) tokens for the bare copies: read anywhere, write under /challenge."""
        from juno_dcs.tokens.storage import read_scope, write_scope

        return (self._rucio.get(self._storage_audience, read_scope("/")).value,
                self._rucio.get(self._storage_audience, write_scope(BARE_AREA)).value)

    def check_rses(self, rses: Sequence[str]) -> None:
        from rucio.common.exception import RSENotFound

        for rse in rses:
            try:
                attributes = self.client.list_rse_attributes(rse)
            except RSENotFound as exc:
                raise ConfigError(f"RSE {rse} is not in the grid's topology") from exc
            self.fts_url = self.fts_url or str(attributes.get("fts", ""))
        if not self.fts_url:
            raise GridStateError(f"RSE {rses[0]} names no transfer service (attribute fts)")

    def service_concurrency(self) -> int:
        """The transfer service's starting limit per link (etc/transfer.yaml, optimizer.start)."""
        from juno_dcs.transfer.config import load_config

        return load_config(self.home.etc / "transfer.yaml").optimizer.start

    def snapshot(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(source SE, destination SE) -> (active, queued) at the transfer service."""
        reply = self.session.get(f"{self.fts_url}/snapshot", params={"window": 60}, headers=self.fts_headers(),
                                 verify=str(self.ca_file), timeout=30)
        if reply.status_code != 200:
            raise ServiceError(f"the transfer service's /snapshot answered {reply.status_code}: {reply.text[:200]}")
        return {(row["source_se"], row["dest_se"]): (int(row["active"]), int(row["queued"]))
                for row in reply.json()["links"]}


def _bare_copies(data: ChallengeData, source: str, destinations: Sequence[str]) -> list[bare.BareCopy]:
    copies = []
    for dest in destinations:
        for name in data.names:
            copies.append(bare.BareCopy(
                destination=dest,
                source_url=bare.https(data.endpoints[source]) + data.url_paths[source][name],
                dest_url=bare.https(data.endpoints[dest]) + f"{BARE_AREA}/{data.stream}/{name}"))
    return copies


def _run_bare(grid: _Grid, data: ChallengeData, options: ChallengeOptions, concurrency: int,
              progress: Progress) -> tuple[list[float], bare.StageTiming]:
    """The bare copies, stage by stage: (seconds per stage, per destination its seconds and its copies' seconds).
    Their files are removed after each stage."""
    timeout = 120 + data.size / 1e6  # at least 1 MB/s per copy
    stage_seconds: list[float] = []
    per_link = bare.StageTiming({}, {})
    source_token, dest_token = grid.storage_tokens()
    with bare.header_file(source_token, dest_token) as headers:
        for number, stage in enumerate(options.stages(), 1):
            landing: list[Path] = []
            for dest in stage:
                area = grid.home.rse_dir(dest) / BARE_AREA.lstrip("/") / data.stream
                area.mkdir(parents=True, exist_ok=True)
                give_to_xrootd(area, grid.home.rse_dir(dest))
                landing.append(area)
            copies = _bare_copies(data, options.source, stage)
            count = [0]
            total = len(copies)

            def done(_copy: bare.BareCopy, count: list[int] = count, total: int = total, number: int = number) -> None:
                count[0] += 1
                if count[0] == total or count[0] % max(1, total // 5) == 0:
                    progress(f"bare copies, stage {number}: {count[0]}/{total}")

            start = time.perf_counter()
            try:
                timing = bare.run_stage(copies, concurrency, headers, grid.ca_dir, timeout, done)
                stage_seconds.append(time.perf_counter() - start)
            finally:
                for area in landing:
                    shutil.rmtree(area, ignore_errors=True)
            per_link.seconds.update(timing.seconds)
            per_link.copies.update(timing.copies)
            os.sync()  # the next phase must not pay for this one's write-back
    return stage_seconds, per_link


def _sample(grid: _Grid, data: ChallengeData, options: ChallengeOptions, rules: dict[str, str],
            done: dict[str, float], last: dict[str, LinkSample]) -> dict[str, LinkSample]:
    """One sample of every link with a rule (a link whose rule is OK keeps its last sample)."""
    pending = [d for d in rules if d not in done]
    service = grid.snapshot() if pending else {}
    samples: dict[str, LinkSample] = {}
    for dest in rules:
        if dest in done and dest in last:
            samples[dest] = last[dest]
            continue
        present = 0
        for path in data.paths[dest].values():
            with contextlib.suppress(FileNotFoundError):  # not started yet
                present += path.stat().st_size
        info = grid.client.get_replication_rule(rules[dest])
        active, queued = service.get((data.endpoints[options.source], data.endpoints[dest]), (0, 0))
        samples[dest] = LinkSample(bytes=present, files_ok=int(info["locks_ok_cnt"]), active=active, queued=queued)
        if info["state"] == "OK":
            done[dest] = -1.0  # the caller stamps the time
        elif info["state"] == "STUCK":
            raise ServiceError(f"the rule {rules[dest]} to {dest} is STUCK: {info.get('error') or 'no reason'}")
    return samples


def _run_rucio(grid: _Grid, data: ChallengeData, options: ChallengeOptions, clock: float,
               progress: Progress) -> tuple[list[Tick], dict[str, str], dict[str, float], dict[str, float]]:
    """Rules stage by stage, sampled until OK: (ticks, rule ids, rule creation times, rule OK times)."""
    ticks: list[Tick] = []
    rules: dict[str, str] = {}
    created: dict[str, float] = {}
    ok: dict[str, float] = {}
    last: dict[str, LinkSample] = {}
    total = data.size * len(data.names)
    timeout = options.timeout or 300 + total * len(options.destinations) / 5e6
    for number, stage in enumerate(options.stages(), 1):
        deadline = time.perf_counter() + timeout
        for dest in stage:
            # from the source only: without it, a T1 that has the files already (in `each` mode) is offered as a
            # source too, and the transfer service may take it
            [rules[dest]] = grid.client.add_replication_rule([{"scope": "raw", "name": data.dataset}], 1, dest,
                                                             source_replica_expression=options.source,
                                                             purge_replicas=True)
            created[dest] = time.perf_counter() - clock
        shown = time.perf_counter()
        while not all(d in ok for d in stage):
            started = time.perf_counter()
            now = started - clock
            last = _sample(grid, data, options, rules, ok, last)
            for dest, at in list(ok.items()):
                if at < 0:
                    ok[dest] = now
            ticks.append(Tick(now, dict(last)))
            if time.perf_counter() - shown >= 2 or all(d in ok for d in stage):
                shown = time.perf_counter()
                progress(f"rules, stage {number}: " + ", ".join(
                    f"{d} {last[d].files_ok}/{len(data.names)} files {last[d].bytes / 1e6:.0f} MB"
                    f"{' OK' if d in ok else ''}" for d in stage))
            if time.perf_counter() > deadline:
                raise ServiceTimeout(f"the rules of stage {number} were not OK within {timeout:.0f} s")
            time.sleep(max(0.0, options.interval - (time.perf_counter() - started)))
    return ticks, rules, created, ok


def run_challenge(settings: GridSettings, options: ChallengeOptions, progress: Progress,
                  report: Callable[[ChallengeResult], Path] | None = None) -> ChallengeResult:
    """The whole challenge; cleans up unless `options.keep`, also when it fails half way."""
    grid = _Grid(settings)
    grid.check_rses([options.source, *options.destinations])
    concurrency = options.concurrency or grid.service_concurrency()
    start = time.perf_counter()
    data: ChallengeData | None = None
    rules: dict[str, str] = {}
    try:
        progress(f"writing {options.files} files of {options.size / 1e6:g} MB at {options.source}")

        def written(count: int) -> None:
            if count == options.files or count % max(1, options.files // 5) == 0:
                progress(f"wrote {count}/{options.files} files")

        data = prepare(grid.client, grid.home, options.source, options.destinations, options.files, options.size,
                       written)
        prepared = time.perf_counter() - start
        for path in data.paths[options.source].values():  # both sides read the source from the page cache
            with path.open("rb") as handle:
                while handle.read(1 << 24):
                    pass
        os.sync()
        progress(f"bare copies, {concurrency} at a time per link ({options.mode})")
        bare_stages, bare_links = _run_bare(grid, data, options, concurrency, progress)
        progress(f"Rucio rules as root ({options.mode}), sampled every {options.interval:g} s")
        clock = time.perf_counter()
        ticks, rules, created, ok = _run_rucio(grid, data, options, clock, progress)
        files = service.fetch_files(grid.get, data.endpoints[options.source],
                                    [data.endpoints[d] for d in options.destinations], data.stream)
        recorded = service.summarise(files)
        spreads = [service.submission_spread([f for f in files if f.dest_se in
                                              {data.endpoints[d] for d in stage}]) for stage in options.stages()]
        total = data.size * len(data.names)
        links = []
        for dest in options.destinations:
            phases = link_phases(ticks, dest, created[dest], ok[dest], total)
            links.append(LinkResult(options.source, dest, len(data.names), total, phases.total_s,
                                    bare_links.seconds[dest], statistics.fmean(bare_links.copies[dest]), phases,
                                    peak_active(ticks, dest), recorded.get(data.endpoints[dest])))
        stages = [stage_phases([next(x.phases for x in links if x.destination == d) for d in stage])
                  for stage in options.stages()]
        result = ChallengeResult(options, concurrency, data.dataset, prepared, links, stages, bare_stages,
                                 sum(spreads), ticks, dict(rules), data.source_rule)
        if report is not None:
            progress("writing the report")
            result = _with(result, report=report(result))
    except BaseException:
        if data is not None and not options.keep:
            remove(grid.client, data, list(rules.values()))
        raise
    if not options.keep:
        progress("removing the challenge's rules, replicas and files")
        result = _with(result, cleaned=True, cleanup_problems=remove(grid.client, data, list(rules.values())))
    return result


def _with(result: ChallengeResult, **changes: Any) -> ChallengeResult:
    from dataclasses import replace

    return replace(result, **changes)
