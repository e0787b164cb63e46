"""`juno-probe tpc`: HTTP third-party copies between every ordered pair of DISK RSEs, in each copy mode.

Per source RSE a small test file is uploaded (davs, priority-1 protocol in Rucio); per destination and mode it is
copied with gfal2 exactly as the transfer service's workers copy (`juno_dcs.transfer.copier`), the adler32 checked
at both ends, the copy deleted; at the end the source file too. Every attempt becomes a `TpcAttempt`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from juno_probes.nagios import Result, Status, threshold
from juno_probes.store import TpcAttempt

logger = logging.getLogger(__name__)

MODES = ("pull", "push", "streamed")
TEST_DIR = "probes/tpc"  # the probes client writes /probes only (docs/security.md)


@dataclass(frozen=True)
class Endpoint:
    rse: str
    url: str  # scheme://host:port/prefix/ of the RSE's priority-1 third-party-copy protocol


@dataclass(frozen=True)
class Copy:
    """What the copy function is asked to do; answers (ok, seconds, error)."""

    source: str
    destination: str
    mode: str
    checksum: str  # adler32, 8 hex digits
    timeout: int


CopyFn = Callable[[Copy], tuple[bool, float, str | None]]
UploadFn = Callable[[Path, str, str, int], str | None]  # (local file, url, adler32, timeout) -> error or None
DeleteFn = Callable[[str], None]


def endpoints(client: Any, rses: Iterable[str] | None = None) -> list[Endpoint]:
    """The DISK RSEs (or the named ones) with their davs third-party-copy URL, from the Rucio client."""
    wanted = set(rses) if rses else None
    found: list[Endpoint] = []
    for rse in sorted(r["rse"] for r in client.list_rses()):
        if wanted is not None and rse not in wanted:
            continue
        info = client.get_rse(rse)
        if wanted is None and info["rse_type"] != "DISK":
            continue
        protocols = [p for p in info["protocols"] if p["domains"]["wan"].get("third_party_copy_read")]
        if not protocols:
            continue
        best = min(protocols, key=lambda p: p["domains"]["wan"]["third_party_copy_read"])
        prefix = "/" + best["prefix"].strip("/") + "/" if best["prefix"].strip("/") else "/"
        found.append(Endpoint(rse, f"{best['scheme']}://{best['hostname']}:{best['port']}{prefix}"))
    if wanted is not None and (missing := wanted - {e.rse for e in found}):
        raise ValueError(f"no such RSE with a third-party-copy protocol: {', '.join(sorted(missing))}")
    return found


def evaluate(attempts: Sequence[TpcAttempt], warning: float, critical: float) -> Result:
    """The status from the failed fraction; the message names the failing pairs (worst first)."""
    if not attempts:
        return Result(Status.UNKNOWN, "no copies attempted (fewer than two RSEs?)")
    failed = [a for a in attempts if not a.ok]
    fraction = len(failed) / len(attempts)
    ok = [a for a in attempts if a.ok]
    rates = [a.throughput_mb_s for a in ok if a.throughput_mb_s is not None]
    perf = {
        "attempts": str(len(attempts)),
        "failed": str(len(failed)),
        "failed_fraction": f"{fraction:.3f};{warning};{critical};0;1",
        "mean_duration": f"{(sum(a.duration_s for a in ok) / len(ok)) if ok else 0:.3f}s",
    }
    if rates:
        perf["mean_throughput"] = f"{sum(rates) / len(rates):.2f}MB/s"
    status = threshold(fraction, warning, critical) if failed else Status.OK
    if not failed:
        return Result(status, f"{len(attempts)} copies ok", perf)
    return Result(status, f"{len(failed)} of {len(attempts)} copies failed: {failing_pairs(attempts)}", perf)


def failing_pairs(attempts: Sequence[TpcAttempt]) -> str:
    """`X: all N copies from and to it failed` for an RSE that fails everything, else `A->B (modes): error`."""
    per_rse: dict[str, list[bool]] = defaultdict(list)
    for a in attempts:
        per_rse[a.source].append(a.ok)
        per_rse[a.destination].append(a.ok)
    dead = sorted(rse for rse, oks in per_rse.items() if not any(oks) and len(per_rse) > 2)
    parts = [f"{rse}: all {len(per_rse[rse])} copies from and to it failed" for rse in dead]
    pairs: dict[tuple[str, str], list[TpcAttempt]] = defaultdict(list)
    for a in attempts:
        if not a.ok and a.source not in dead and a.destination not in dead:
            pairs[(a.source, a.destination)].append(a)
    for (src, dst), failed in sorted(pairs.items()):
        error = (failed[-1].error or "").splitlines()[0][:120] if failed[-1].error else "unknown error"
        parts.append(f"{src}->{dst} ({','.join(a.mode for a in failed)}): {error}")
    return "; ".join(parts)


def run_matrix(sources: Sequence[Endpoint], modes: Sequence[str], copy_fn: CopyFn, upload_fn: UploadFn,
               delete_fn: DeleteFn, timeout: int = 60, parallel: int = 4, size: int = 1 << 20,
               now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[TpcAttempt]:
    """Upload one file per source, copy it to every other endpoint in every mode, delete everything."""
    if bad := [m for m in modes if m not in MODES]:
        raise ValueError(f"unknown copy mode {', '.join(bad)} (known: {', '.join(MODES)})")
    tag = uuid.uuid4().hex[:12]
    payload = os.urandom(size)
    adler = f"{zlib.adler32(payload) & 0xFFFFFFFF:08x}"
    with tempfile.TemporaryDirectory(prefix="juno-probe-tpc-") as tmp:
        local = Path(tmp) / "probe.dat"
        local.write_bytes(payload)

        def source_url(e: Endpoint) -> str:
            return f"{e.url}{TEST_DIR}/{tag}/{e.rse}.src"

        with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="tpc") as pool:
            uploaded = dict(zip(sources, pool.map(lambda e: upload_fn(local, source_url(e), adler, timeout),
                                                  sources), strict=True))

            def attempt(src: Endpoint, dst: Endpoint, mode: str) -> TpcAttempt:
                at = now()
                if (error := uploaded[src]) is not None:
                    return TpcAttempt(src.rse, dst.rse, mode, False, 0.0, None, f"upload to {src.rse} failed: {error}",
                                      at)
                dest = f"{dst.url}{TEST_DIR}/{tag}/{src.rse}-{dst.rse}-{mode}.dst"
                ok, seconds, error = copy_fn(Copy(source_url(src), dest, mode, adler, timeout))
                if ok:
                    delete_fn(dest)
                rate = size / seconds / 1e6 if ok and seconds > 0 else None
                return TpcAttempt(src.rse, dst.rse, mode, ok, seconds, rate, error, at)

            jobs = [(s, d, m) for s in sources for d in sources if s != d for m in modes]
            attempts = list(pool.map(lambda job: attempt(*job), jobs))
            list(pool.map(lambda e: delete_fn(source_url(e)), [e for e in sources if uploaded[e] is None]))
            list(pool.map(lambda e: delete_fn(f"{e.url}{TEST_DIR}/{tag}/"), sources))  # the run's directories
    return attempts


# --- gfal2, as the transfer service's workers use it


def gfal_copy(request: Copy, token: str | None = None) -> tuple[bool, float, str | None]:
    from juno_dcs.transfer import copier

    result = copier.copy(copier.CopyRequest(
        source=request.source, destination=request.destination, mode=request.mode, checksum_mode="both",
        checksum=f"ADLER32:{request.checksum}", overwrite=True, timeout=request.timeout,
        source_token=token, dest_token=token,
    ))
    return result.ok, result.seconds, None if result.ok else result.reason


def gfal_upload(local: Path, url: str, adler32: str, timeout: int, token: str | None = None) -> str | None:
    from juno_dcs.transfer import copier

    result = copier.copy(copier.CopyRequest(
        source=local.as_uri(), destination=url, mode="streamed", checksum_mode="both", checksum=f"ADLER32:{adler32}",
        overwrite=True, timeout=timeout, dest_token=token,
    ))
    return None if result.ok else result.reason


def gfal_delete(url: str, token: str | None = None) -> None:
    """Remove a file, or (URL ending in /) an empty directory; what is already gone is fine."""
    import gfal2

    from juno_dcs.transfer import copier

    if not url.endswith("/"):
        copier.remove_quietly(url, token=token)
        return
    ctx = gfal2.creat_context()
    ctx.set_opt_boolean("HTTP PLUGIN", "RETRIEVE_BEARER_TOKEN", False)
    parts = urlsplit(url)
    ctx.cred_set(f"{parts.scheme}://{parts.netloc}", ctx.cred_new("BEARER", token or "none"))  # as the copier does
    try:
        ctx.rmdir(url)
    except gfal2.GError as exc:
        logger.debug("could not remove %s: %s", url, exc.message)


def check(client: Any, rses: Sequence[str] | None = None, modes: Sequence[str] = MODES, timeout: int = 60,
          parallel: int = 4, warning: float = 0.01, critical: float = 0.1,
          size: int = 1 << 20, token: str | None = None) -> tuple[Result, list[TpcAttempt]]:
    """`token`: the probes' storage token (storage.read/create/modify on the test area), for every endpoint."""
    started = time.monotonic()
    found = endpoints(client, rses)
    if len(found) < 2:
        return Result(Status.UNKNOWN, f"need two RSEs with third-party copy, found {len(found)}"), []
    attempts = run_matrix(found, modes, partial(gfal_copy, token=token), partial(gfal_upload, token=token),
                          partial(gfal_delete, token=token), timeout=timeout, parallel=parallel, size=size)
    result = evaluate(attempts, warning, critical)
    perf = {**result.perfdata, "matrix_time": f"{time.monotonic() - started:.1f}s"}
    return Result(result.status, f"{len(found)} RSEs x {len(modes)} modes: {result.message}", perf), attempts


def details(attempts: Sequence[TpcAttempt]) -> Mapping[str, Any]:
    return {"failed": [{"source": a.source, "destination": a.destination, "mode": a.mode, "error": a.error}
                       for a in attempts if not a.ok]}
