"""The shape of a JUNO catalogue at scale, as pure data: what benchmarks/scale.py registers in Rucio.

The catalogue grows in units of 10,000 files, each unit in the shares JUNO's catalogue has:
    raw   6 daily blocks raw:block.<YYYYMMDD>.physics of 1,000 files each (4 runs a day), consecutive days
    mc    one production mc:mc.SCALE.p<unit> (a container) of 4 step datasets (detsim, elecsim, cal, rec) of
          750 job outputs each
    user  10 datasets of 100 files in the user.<account> scopes, in turn
Every file has a size and an adler32 (metadata only: no bytes are written). Unit u is the same whoever builds it,
so a fill can stop and go on, and two workers can build disjoint units at once.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

from juno_rucio_policy.naming import mc_file_name, raw_file_name

UNIT_FILES = 10_000
RAW_BLOCKS, BLOCK_FILES, RUNS_PER_DAY = 6, 1000, 4
MC_STEPS, MC_FILES = ("detsim", "elecsim", "cal", "rec"), 750
USER_DATASETS, USER_FILES = 10, 100
RAW_STREAM, MC_CAMPAIGN = "physics", "SCALE"
FIRST_DAY = dt.date(2020, 1, 1)


@dataclass(frozen=True)
class FileSpec:
    name: str
    bytes: int
    adler32: str


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset and its files; `container`: the collection it belongs to, if any."""

    scope: str
    name: str
    files: tuple[FileSpec, ...]
    meta: tuple[tuple[str, object], ...] = ()
    container: str | None = None


def _file(name: str) -> FileSpec:
    checksum = zlib.adler32(name.encode()) & 0xFFFFFFFF
    return FileSpec(name=name, bytes=500_000_000 + checksum % 1_000_000_000, adler32=f"{checksum:08x}")


def block_day(block: int) -> dt.date:
    return FIRST_DAY + dt.timedelta(days=block)


def raw_block(block: int) -> DatasetSpec:
    """The `block`-th daily raw block (0 = FIRST_DAY): BLOCK_FILES files over RUNS_PER_DAY runs."""
    day, per_run = block_day(block), BLOCK_FILES // RUNS_PER_DAY
    first_run = 100_000 + block * RUNS_PER_DAY
    files = tuple(_file(raw_file_name(first_run + i // per_run, RAW_STREAM, i % per_run, day))
                  for i in range(BLOCK_FILES))
    meta = (("block_date", day.isoformat()), ("block_stream", RAW_STREAM), ("juno_ingest", True),
            ("run_first", first_run), ("run_last", first_run + RUNS_PER_DAY - 1))
    return DatasetSpec("raw", f"block.{day:%Y%m%d}.{RAW_STREAM}", files, meta)


def mc_step(tag: str, step: str, jobs: int) -> DatasetSpec:
    files = tuple(_file(mc_file_name(MC_CAMPAIGN, tag, step, job)) for job in range(jobs))
    return DatasetSpec("mc", f"mc.{MC_CAMPAIGN}.{tag}.{step}", files, container=f"mc.{MC_CAMPAIGN}.{tag}")


def user_dataset(scope: str, unit: int, index: int) -> DatasetSpec:
    label = f"scale.u{unit:06d}.d{index:02d}"
    files = tuple(_file(f"{label}.f{i:04d}.root") for i in range(USER_FILES))
    return DatasetSpec(scope, label, files)


def unit(u: int, user_scopes: tuple[str, ...]) -> list[DatasetSpec]:
    """The datasets of unit `u` (UNIT_FILES files in all)."""
    raw = [raw_block(u * RAW_BLOCKS + b) for b in range(RAW_BLOCKS)]
    mc = [mc_step(f"p{u:06d}", step, MC_FILES) for step in MC_STEPS]
    user = [user_dataset(user_scopes[(u * USER_DATASETS + i) % len(user_scopes)], u, i)
            for i in range(USER_DATASETS)]
    return raw + mc + user


def units_between(files_from: int, files_to: int) -> range:
    """The units that take a catalogue of this shape from `files_from` to `files_to` files (multiples of
    UNIT_FILES)."""
    for n in (files_from, files_to):
        if n % UNIT_FILES:
            raise ValueError(f"{n} files: the catalogue grows in units of {UNIT_FILES:,} files")
    return range(files_from // UNIT_FILES, files_to // UNIT_FILES)


def expected_counts(files: int) -> dict[str, int]:
    """Files per scope kind ("raw", "mc", "user") in a catalogue of `files` files of this shape."""
    units = files // UNIT_FILES
    return {"raw": units * RAW_BLOCKS * BLOCK_FILES, "mc": units * len(MC_STEPS) * MC_FILES,
            "user": units * USER_DATASETS * USER_FILES}


def new_block(stream: str) -> DatasetSpec:
    """A day's raw block outside the filled days (day FIRST_DAY + 4000, its own stream): the block that policy
    apply places."""
    block = raw_block(4000)
    files = tuple(_file(f.name.replace(f".{RAW_STREAM}.", f".{stream}.")) for f in block.files)
    meta = tuple((k, stream if k == "block_stream" else v) for k, v in block.meta)
    return DatasetSpec("raw", block.name.replace(f".{RAW_STREAM}", f".{stream}"), files, meta)


def big_dataset(tag: str, files: int) -> DatasetSpec:
    """One MC step dataset of `files` job outputs (a 10,000-job production's detsim)."""
    return mc_step(tag, "detsim", files)
