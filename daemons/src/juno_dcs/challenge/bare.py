"""Bare HTTP third-party copies: the challenge's bytes copied by `curl -X COPY` between the same XRootD servers,
with no Rucio and no transfer service in the way: what the storage elements and the machine can do.

Each copy is a pull: the destination's XRootD fetches the file from the source. curl sends the destination's
token as `Authorization` and the source's as `TransferHeaderAuthorization` (which XRootD passes on to the source
as `Authorization`), both read from a 0600 header file so that no token shows on a command line. Copies land in
`/challenge/<stream>/` at each destination and are removed by the caller.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from juno_dcs.errors import ServiceError


@dataclass(frozen=True)
class BareCopy:
    """One file from the source to one destination."""

    destination: str  # the RSE
    source_url: str  # https://host:port/path
    dest_url: str


def https(url: str) -> str:
    return url.replace("davs://", "https://", 1)


@contextmanager
def header_file(source_token: str, dest_token: str) -> Iterator[Path]:
    """A 0600 file of curl headers with the two tokens, removed on exit."""
    handle, name = tempfile.mkstemp(prefix="juno-challenge-", suffix=".headers")
    path = Path(name)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(f"Authorization: Bearer {dest_token}\nTransferHeaderAuthorization: Bearer {source_token}\n")
        yield path
    finally:
        path.unlink(missing_ok=True)


def copy_one(copy: BareCopy, headers: Path, ca_dir: Path, timeout: float) -> None:
    """One `curl -X COPY`; a ServiceError when curl or XRootD says it failed."""
    try:
        proc = subprocess.run(
            ["curl", "-sS", "--capath", str(ca_dir), "-X", "COPY", "-H", f"Source: {copy.source_url}",
             "-H", f"@{headers}", copy.dest_url],
            capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"bare copy to {copy.dest_url}: no answer within {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise ServiceError("bare copies need curl on the PATH") from exc
    if proc.returncode != 0 or "success" not in proc.stdout:
        said = " ".join((proc.stdout + proc.stderr).split())[-300:]
        raise ServiceError(f"bare copy {copy.source_url} -> {copy.dest_url} failed: {said}")


@dataclass(frozen=True)
class StageTiming:
    """Per destination: seconds from the stage's start to its last copy's end, and each copy's own seconds."""

    seconds: dict[str, float]
    copies: dict[str, list[float]]


def run_stage(copies: Sequence[BareCopy], concurrency: int, headers: Path, ca_dir: Path, timeout: float,
              done: Callable[[BareCopy], None] | None = None) -> StageTiming:
    """Copy every file of the stage, `concurrency` at once per destination, all destinations at once."""
    start = time.perf_counter()
    by_dest: dict[str, list[BareCopy]] = {}
    for copy in copies:
        by_dest.setdefault(copy.destination, []).append(copy)
    seconds: dict[str, float] = {}
    durations: dict[str, list[float]] = {dest: [] for dest in by_dest}
    errors: list[BaseException] = []

    def one_link(dest: str, todo: list[BareCopy]) -> None:
        def one(copy: BareCopy) -> None:
            began = time.perf_counter()
            copy_one(copy, headers, ca_dir, timeout)
            durations[dest].append(time.perf_counter() - began)
            if done:
                done(copy)

        try:
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"bare-{dest}") as pool:
                list(pool.map(one, todo))
        except ServiceError as exc:
            errors.append(exc)
        seconds[dest] = time.perf_counter() - start

    threads = [threading.Thread(target=one_link, args=(d, t), name=f"bare-{d}") for d, t in by_dest.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise ServiceError(str(errors[0]))
    return StageTiming(seconds, durations)
