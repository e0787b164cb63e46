"""The challenge's data: files written straight into the source RSE's storage, registered in Rucio in one raw
block (dataset), and removed again.

The files are written where the source's XRootD keeps them (its storage directory, owned by the xrootd user, so
the command runs as root) at the paths Rucio's lfn2pfn gives them, and registered as replicas there with their
size and adler32; nothing is copied in through the SE's front end, which would make the preparation a transfer
test of its own. The names are JUNO raw names of a stream unique to the run (`dc` and 8 hex digits), so two runs
never share a file and a run's leftovers can be told apart.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from juno_dcs.errors import GridStateError, ServiceError
from juno_dcs.grid.home import GridHome

SCOPE = "raw"
RUN = "000000"
CHUNK = 8 * 1024 * 1024
XROOTD_USER = "xrootd"
BATCH = 500  # DIDs per registration call


@dataclass(frozen=True)
class ChallengeData:
    """A run's files: their Rucio names, size and adler32, and their local path at every RSE involved."""

    stream: str
    dataset: str
    names: tuple[str, ...]
    size: int
    checksums: dict[str, str]
    paths: dict[str, dict[str, Path]]  # RSE -> name -> where the RSE's XRootD keeps the file
    url_paths: dict[str, dict[str, str]]  # RSE -> name -> the path part of its davs URL
    endpoints: dict[str, str]  # RSE -> its davs endpoint, davs://host:port
    source_rule: str  # keeps the files at the source until the run removes them

    @property
    def dids(self) -> list[dict[str, str]]:
        return [{"scope": SCOPE, "name": n} for n in self.names]


def new_names(files: int, today: dt.date | None = None) -> tuple[str, str, tuple[str, ...]]:
    """(stream, dataset, file names) for a new run: a raw block of a stream of its own."""
    day = (today or dt.datetime.now(dt.UTC).date()).strftime("%Y%m%d")
    stream = f"dc{uuid.uuid4().hex[:8]}"
    names = tuple(f"RUN.{RUN}.{stream}.{i:05d}.{day}.rtraw" for i in range(1, files + 1))
    return stream, f"block.{day}.{stream}", names


Located = tuple[dict[str, dict[str, Path]], dict[str, dict[str, str]], dict[str, str]]


def locate(home: GridHome, rses: Sequence[str], names: Sequence[str]) -> Located:
    """Where each file is (or will be) at each RSE, as Rucio's deterministic lfn2pfn names it: the local path in
    the RSE's storage, the URL path, and the RSE's davs endpoint."""
    from rucio.rse import rsemanager
    from rucio.rse.translation import RSEDeterministicTranslation

    # the policy package's algorithms are registered when the first translator is made; before that a protocol
    # asks the server for PFNs in one GET, too long a URL for many names
    RSEDeterministicTranslation()
    paths: dict[str, dict[str, Path]] = {}
    url_paths: dict[str, dict[str, str]] = {}
    endpoints: dict[str, str] = {}
    for rse in rses:
        info = rsemanager.get_rse_info(rse)
        pfns = rsemanager.lfns2pfns(info, [{"scope": SCOPE, "name": n} for n in names], operation="write",
                                    scheme="davs")
        url_paths[rse] = {}
        for n in names:
            scheme, rest = str(pfns[f"{SCOPE}:{n}"]).split("://", 1)
            host, path = rest.split("/", 1)
            endpoints[rse] = f"{scheme}://{host}"
            url_paths[rse][n] = "/" + path
        root = home.rse_dir(rse)
        paths[rse] = {n: root / p.lstrip("/") for n, p in url_paths[rse].items()}
    return paths, url_paths, endpoints


def give_to_xrootd(path: Path, storage_root: Path) -> None:
    """Make `path` and its directories up to the RSE's storage root belong to the xrootd user."""
    try:
        shutil.chown(path, XROOTD_USER, XROOTD_USER)
        for parent in path.parents:
            if parent == storage_root or storage_root not in parent.parents:
                break
            shutil.chown(parent, XROOTD_USER, XROOTD_USER)
    except PermissionError as exc:
        raise GridStateError(f"cannot give {path} to the {XROOTD_USER} user: the challenge writes into the "
                             "storage elements' directories and must run as root") from exc


def write_file(path: Path, size: int, chunk: bytes, seed: int) -> str:
    """Write `size` bytes (an 8-byte header with `seed`, then `chunk` repeated) and return their adler32."""
    path.parent.mkdir(parents=True, exist_ok=True)
    checksum = 1
    left = size
    with path.open("wb") as handle:
        block = seed.to_bytes(8, "big") + chunk
        while left > 0:
            part = block[:left]
            handle.write(part)
            checksum = zlib.adler32(part, checksum)
            left -= len(part)
            block = chunk
    return f"{checksum & 0xFFFFFFFF:08x}"


def free_bytes(path: Path) -> int:
    """Free bytes on the file system that holds `path` (or its nearest existing parent)."""
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def prepare(client: Any, home: GridHome, source: str, destinations: Sequence[str], files: int, size: int,
            progress: Callable[[int], None] | None = None) -> ChallengeData:
    """Write `files` files of `size` bytes at `source`, register them and their dataset in Rucio."""
    stream, dataset, names = new_names(files)
    paths, url_paths, endpoints = locate(home, [source, *destinations], names)
    need = files * size * (1 + len(destinations))
    if free_bytes(home.rse_dir(source)) < need:
        raise GridStateError(f"the challenge needs {need / 1e9:.1f} GB free under {home.rse_dir(source)} "
                             f"({files} files of {size} bytes at the source and each of {len(destinations)} "
                             "destinations)")
    chunk = os.urandom(min(size, CHUNK))
    checksums: dict[str, str] = {}
    storage_root = home.rse_dir(source)
    for i, name in enumerate(names):
        path = paths[source][name]
        checksums[name] = write_file(path, size, chunk, i)
        give_to_xrootd(path, storage_root)
        if progress:
            progress(i + 1)
    replicas = [{"scope": SCOPE, "name": n, "bytes": size, "adler32": checksums[n]} for n in names]
    from rucio.common.exception import RucioException

    try:
        for i in range(0, files, BATCH):
            client.add_replicas(source, replicas[i:i + BATCH])
        client.add_dataset(SCOPE, dataset)
        for i in range(0, files, BATCH):
            client.attach_dids(SCOPE, dataset, [{"scope": SCOPE, "name": n} for n in names[i:i + BATCH]])
        [source_rule] = client.add_replication_rule([{"scope": SCOPE, "name": dataset}], 1, source,
                                                    purge_replicas=True)
    except RucioException as exc:
        raise ServiceError(f"registering the challenge's files in Rucio: {exc}") from exc
    return ChallengeData(stream, dataset, names, size, checksums, paths, url_paths, endpoints, source_rule)


def replicas_left(client: Any, data: ChallengeData) -> int:
    """How many replicas of the run's files Rucio still lists (any RSE, any state)."""
    from rucio.common.exception import DataIdentifierNotFound

    try:
        found = client.list_replicas([{"scope": SCOPE, "name": data.dataset}], all_states=True)
        return sum(len(replica.get("rses", {})) for replica in found)
    except DataIdentifierNotFound:
        return 0


def remove(client: Any, data: ChallengeData, rules: Sequence[str], wait: float = 90.0,
           sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Remove the run: each of its rules gets a lifetime of one second and purge_replicas, so that Rucio's
    judge-cleaner deletes it and marks its replicas obsolete, which the grid's reaper deletes from the storage and
    the catalogue (a plain rule deletion would keep the rule an hour). Waits up to `wait` seconds for that,
    unlinks any file left, and gives the dataset a lifetime of one second for the undertaker. Returns what could
    not be removed (nothing when all went). A rule already gone is no problem."""
    from rucio.common.exception import RucioException, RuleNotFound

    problems: list[str] = []
    for rule_id in [data.source_rule, *rules]:
        try:
            client.update_replication_rule(rule_id, {"purge_replicas": True, "lifetime": 1})
        except RuleNotFound:
            pass
        except RucioException as exc:
            problems.append(f"rule {rule_id}: {exc}")
    deadline = time.monotonic() + wait
    left = replicas_left(client, data)
    while left and time.monotonic() < deadline:
        sleep(2.0)
        left = replicas_left(client, data)
    if left:
        problems.append(f"{left} replicas of raw:{data.dataset} still listed after {wait:.0f} s (the reaper "
                        "removes them later)")
    for where in data.paths.values():
        for path in where.values():
            path.unlink(missing_ok=True)
    try:
        client.set_metadata(SCOPE, data.dataset, "lifetime", 1)  # the undertaker removes the block
    except RucioException as exc:
        problems.append(f"dataset {data.dataset}: {exc}")
    return problems
