"""The optional check before registration: is the file at the SE, with the size and adler32 the message says?

The file is looked up where Rucio will say it is (the RSE's davs protocol and the deterministic JUNO path), not
at the message's location, so a message cannot send the check elsewhere. gfal2 asks the storage element (XRootD
computes adler32 itself); a file missing or different is quarantined. A storage element that does not answer is a
transient problem: the batch is retried, nothing is quarantined. The SE is asked with the ingestor's token (the
raw-data service's, `storage.read:/raw`), in the URL for root:// and as the bearer header for davs
(juno_dcs.tokens.storage).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from juno_dcs.errors import ServiceError
from juno_dcs.ingest.message import FileArrived
from juno_dcs.tokens.storage import authorize, redact, with_token
from juno_rucio_policy.paths import path_for

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


def se_base(client: Any, rse: str) -> str:
    """The URL prefix of the RSE's root (else first) read protocol, e.g. root://localhost:23010/. The XRootD
    protocol multiplexes every check over one connection per server; davs would open HTTPS connections by the
    thousand, which XRootD 5.5's HTTP front end does not take well under load (it stops accepting)."""
    protocols = client.get_protocols(rse, protocol_domain="wan", operation="read")
    chosen = next((p for p in protocols if p["scheme"] == "root"), protocols[0])
    return f"{chosen['scheme']}://{chosen['hostname']}:{chosen['port']}{chosen['prefix']}".rstrip("/") + "/"


def problem(message: FileArrived, base: str, token: str | None = None) -> str | None:
    """Why the file at the SE does not match the message, or None when it does."""
    import gfal2

    shown = base + path_for("raw", message.name)
    url = with_token(shown, token)
    ctx = _context()
    authorize(ctx, token)
    try:
        size = ctx.stat(url).st_size  # type: ignore[attr-defined]
        if size != message.size:
            return f"size at the SE is {size} bytes, the message says {message.size}"
        adler32 = ctx.checksum(url, "adler32").lower().zfill(8)  # type: ignore[attr-defined]
    except gfal2.GError as exc:
        if exc.code == errno.ENOENT:
            return f"no such file at the SE: {shown}"
        # anything else (refused or dropped connections, TLS errors, timeouts, an overloaded SE, even a
        # permission problem of the ingestor's own) says nothing about the file: wait and check again
        raise StorageUnavailable(f"{shown}: {redact(exc.message)}") from None
    if adler32 != message.adler32:
        return f"adler32 at the SE is {adler32}, the message says {message.adler32}"
    return None


def problems(messages: Sequence[FileArrived], base: str, threads: int,
             token: str | None = None) -> dict[str, str]:
    """name -> problem for every file that does not match; StorageUnavailable when the SE is down."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        found = list(pool.map(lambda m: problem(m, base, token), messages))
    return {m.name: p for m, p in zip(messages, found, strict=True) if p is not None}
