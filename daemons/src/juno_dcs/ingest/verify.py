"""The optional check before registration: is the file at the SE, with the size and adler32 the message says?

gfal2 asks the storage element (XRootD computes adler32 itself); a file missing or different is quarantined.
A storage element that does not answer is a transient problem: the batch is retried, nothing is quarantined.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from juno_dcs.errors import ServiceError
from juno_dcs.ingest.message import FileArrived

_TRANSIENT = {errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ECONNRESET, errno.EAGAIN}
_local = threading.local()


class StorageUnavailable(ServiceError):
    transient = True


def _context() -> object:
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        import gfal2

        ctx = gfal2.creat_context()
        _local.ctx = ctx
    return ctx


def problem(message: FileArrived) -> str | None:
    """Why the file at message.location does not match the message, or None when it does."""
    import gfal2

    ctx = _context()
    try:
        size = ctx.stat(message.location).st_size  # type: ignore[attr-defined]
        if size != message.size:
            return f"size at the SE is {size} bytes, the message says {message.size}"
        adler32 = ctx.checksum(message.location, "adler32").lower().zfill(8)  # type: ignore[attr-defined]
    except gfal2.GError as exc:
        if exc.code == errno.ENOENT:
            return f"no such file at the SE: {message.location}"
        if exc.code in _TRANSIENT:
            raise StorageUnavailable(f"{message.location}: {exc.message}") from exc
        return f"the SE refused the check: {exc.message}"
    if adler32 != message.adler32:
        return f"adler32 at the SE is {adler32}, the message says {message.adler32}"
    return None


def problems(messages: Sequence[FileArrived], threads: int) -> dict[str, str]:
    """name -> problem for every file that does not match; StorageUnavailable when the SE is down."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        found = list(pool.map(problem, messages))
    return {m.name: p for m, p in zip(messages, found, strict=True) if p is not None}
