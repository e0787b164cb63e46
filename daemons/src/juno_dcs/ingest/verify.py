"""The optional check before registration: is the file at the SE, with the size and adler32 the message says?

The file is looked up where Rucio will say it is (the RSE's root protocol, else its first, and the deterministic
JUNO path), not at the message's location, so a message cannot send the check elsewhere. The storage element is
asked for the size and the adler32 (XRootD computes it itself); a file missing or different is quarantined. A
storage element that does not answer is a transient problem: the batch is retried, nothing is quarantined. The SE
is asked with the ingestor's token (the raw-data service's, `storage.read:/raw`), in the CGI for root:// and as the
bearer header for davs (juno_dcs.tokens.storage).

Over root:// the checks go through XRootD's own client (Debian's python3-xrootd), one per thread and server, whose
requests share one connection: a check costs about a fifth of what it costs through gfal2, which makes a client
for every call (0.26 against 1.34 ms for a stat and a checksum with a token, on the benchmark's machine). The
token travels in every request's CGI, so a cheaper request also makes the token's share smaller
(benchmarks/ingest.py, `checked_token_cost`). Other schemes go through gfal2.
"""

from __future__ import annotations

import errno
import functools
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from juno_dcs.errors import ServiceError
from juno_dcs.ingest.message import FileArrived
from juno_dcs.tokens.storage import authorize, redact, with_token
from juno_rucio_policy.paths import path_for
from juno_rucio_policy.tokens import authz

_local = threading.local()
ROOT_SCHEMES = ("root://", "roots://")
XROOTD_TIMEOUT_S = 60
XRD_NOT_FOUND = 3011  # kXR_NotFound


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


@functools.cache
def _xrootd_settings() -> None:
    """XrdCl's defaults retry a refused connection for minutes; an SE that does not answer is reported at once
    (the batch waits and is checked again: the daemon's retry)."""
    from XRootD import client

    client.EnvPutInt("ConnectionRetry", 1)
    client.EnvPutInt("ConnectionWindow", 10)


def _filesystem(server: str) -> Any:
    """This thread's XRootD client of `server` (root://host:port), made once."""
    clients: dict[str, Any] = _local.__dict__.setdefault("xrootd", {})
    if server not in clients:
        from XRootD import client

        _xrootd_settings()
        clients[server] = client.FileSystem(server)
    return clients[server]


def _problem_xrootd(message: FileArrived, shown: str, token: str | None) -> str | None:
    from XRootD.client.flags import QueryCode

    url = urlsplit(shown)
    fs = _filesystem(f"{url.scheme}://{url.netloc}")
    path = url.path + (f"?{authz(token)}" if token else "")
    status, info = fs.stat(path, timeout=XROOTD_TIMEOUT_S)
    if status.ok and info.size != message.size:
        return f"size at the SE is {info.size} bytes, the message says {message.size}"
    if status.ok:
        status, reply = fs.query(QueryCode.CHECKSUM, path, timeout=XROOTD_TIMEOUT_S)
    if not status.ok:
        if status.errno == XRD_NOT_FOUND:
            return f"no such file at the SE: {shown}"
        # as below: a refusal, a timeout or a dropped connection says nothing about the file
        raise StorageUnavailable(f"{shown}: {redact(str(status.message)).strip()}")
    algorithm, _, value = bytes(reply).decode(errors="replace").strip("\x00 \n").partition(" ")
    if algorithm != "adler32" or not value:
        raise StorageUnavailable(f"{shown}: the SE's checksum reply is not an adler32: {algorithm!r}")
    adler32 = value.strip().lower().zfill(8)
    if adler32 != message.adler32:
        return f"adler32 at the SE is {adler32}, the message says {message.adler32}"
    return None


def problem(message: FileArrived, base: str, token: str | None = None) -> str | None:
    """Why the file at the SE does not match the message, or None when it does."""
    shown = base + path_for("raw", message.name)
    if shown.startswith(ROOT_SCHEMES):
        return _problem_xrootd(message, shown, token)
    import gfal2

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
