"""One third-party copy with gfal2 (Debian's python3-gfal2): pull, push or streamed, with checksums,
overwrite, a timeout and bearer tokens per endpoint. A failed copy removes what it left at the destination.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

MODES = {"pull": "3rd pull", "push": "3rd push", "streamed": "streamed"}
CHECKSUM_MODES = ("both", "source", "target", "none")


@dataclass(frozen=True)
class CopyRequest:
    source: str
    destination: str
    mode: str = "pull"
    checksum_mode: str = "both"
    checksum: str | None = None  # "ADLER32:xxxxxxxx": the value the source must have
    overwrite: bool = False
    timeout: int = 600
    source_token: str | None = None
    dest_token: str | None = None
    filesize: int | None = None  # when known, no stat of the destination after the copy


@dataclass(frozen=True)
class CopyResult:
    ok: bool
    seconds: float
    size: int | None
    reason: str

    @property
    def throughput_mb_s(self) -> float | None:
        if not self.ok or not self.size or self.seconds <= 0:
            return None
        return self.size / self.seconds / 1e6


def _prefix(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


_local = threading.local()


def set_log_level(level: str) -> None:
    """gfal2's verbosity for this process ("warning", "normal", "verbose" or "debug"), and the same threshold
    on the Python logger its binding forwards to."""
    import gfal2

    gfal2.set_verbose(getattr(gfal2.verbose_level, level))
    logging.getLogger("gfal2").setLevel(logging.WARNING if level == "warning" else logging.DEBUG)


def _context(request: CopyRequest) -> object:
    """This thread's gfal2 context, set up for `request`. A context per thread (not per copy) keeps
    davix's HTTPS sessions to the storage elements open between copies: no TLS handshake per request."""
    import gfal2  # Debian's binding, linked into the venv by `make setup`

    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = _local.ctx = gfal2.creat_context()
    streamed = request.mode == "streamed"
    ctx.set_opt_boolean("HTTP PLUGIN", "ENABLE_REMOTE_COPY", not streamed)
    ctx.set_opt_boolean("HTTP PLUGIN", "ENABLE_FALLBACK_TPC_COPY", False)
    ctx.set_opt_string("HTTP PLUGIN", "DEFAULT_COPY_MODE", MODES[request.mode])
    ctx.set_opt_boolean("HTTP PLUGIN", "RETRIEVE_BEARER_TOKEN", False)
    # Without any bearer token gfal2 asks davs endpoints for a GridSite delegation, which they refuse;
    # with one (even "none") it sends `Credential: none` and the copy goes ahead.
    for url, token in ((request.source, request.source_token), (request.destination, request.dest_token)):
        ctx.cred_set(_prefix(url), ctx.cred_new("BEARER", token or "none"))
    return ctx


def copy(request: CopyRequest) -> CopyResult:
    import gfal2

    if request.mode not in MODES:
        return CopyResult(False, 0.0, None, f"unknown copy mode {request.mode!r}")
    ctx = _context(request)
    params = ctx.transfer_parameters()  # type: ignore[attr-defined]
    params.overwrite = request.overwrite
    params.timeout = request.timeout
    params.create_parent = True
    expected = request.checksum.split(":", 1)[1] if request.checksum and ":" in request.checksum else ""
    mode = {"both": gfal2.checksum_mode.both, "source": gfal2.checksum_mode.source,
            "target": gfal2.checksum_mode.target, "none": gfal2.checksum_mode.none}[request.checksum_mode]
    if request.checksum_mode != "none":
        params.set_checksum(mode, "adler32", expected)
    started = time.monotonic()
    try:
        ctx.filecopy(params, request.source, request.destination)  # type: ignore[attr-defined]
        size = request.filesize
        if size is None or request.checksum_mode == "none":  # nothing vouched for the size: look
            size = int(ctx.stat(request.destination).st_size)  # type: ignore[attr-defined]
        return CopyResult(True, time.monotonic() - started, size, "")
    except gfal2.GError as exc:
        elapsed = time.monotonic() - started
        reason = f"TRANSFER [{exc.code}] {exc.message.strip()}"
        if exc.code != errno.EEXIST:  # never remove a file that was there before and that we were told not to overwrite
            remove_quietly(request.destination, ctx)
        return CopyResult(False, elapsed, None, reason)


def remove_quietly(url: str, ctx: object | None = None, token: str | None = None) -> None:
    """Delete a (partial) destination file, with the destination's token; a missing file is fine."""
    import gfal2

    if ctx is None:
        ctx = _context(CopyRequest(source=url, destination=url, source_token=token, dest_token=token))
    try:
        ctx.unlink(url)  # type: ignore[attr-defined]
        logger.info("removed the partial destination %s", url)
    except gfal2.GError as exc:
        if exc.code != errno.ENOENT:
            logger.warning("could not remove %s: %s", url, exc.message)


def exists(url: str, token: str | None = None) -> bool:
    """Is the file there? Asked with `token` (the destination's: storage elements refuse a stat without one)."""
    import gfal2

    ctx = _context(CopyRequest(source=url, destination=url, source_token=token, dest_token=token))
    try:
        ctx.stat(url)  # type: ignore[attr-defined]
    except gfal2.GError:
        return False
    return True
