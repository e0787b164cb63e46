"""The grid's memcached: Rucio's cache of RSE attributes, protocols, its configuration table and token checks.

Without it every Rucio process runs with a null cache (rucio.common.cache), and Rucio asks the database for an
RSE attribute once per file while it lists replicas, evaluates a rule or creates one: at 50,000 files a
`rucio replica list file` of a 1,000-file block spent 14.5 of its 16 s in those queries (docs/performance.md).

memcached has no authentication of its own for Rucio's client, so it listens on a unix socket only (no TCP, no
UDP) in a directory of mode 0700: only the grid's own user reaches it. The path is short (a socket path may not
exceed 107 bytes), so it lives in /tmp under the home's tag, like XRootD's admin directory.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from juno_dcs.errors import GridStateError
from juno_dcs.grid.home import GridHome

MEMORY_MB = 64  # RSE attributes, protocols and configuration of a grid take well under a megabyte
CONNECTIONS = 1024


def socket_dir(home: GridHome) -> Path:
    return Path("/tmp") / f"jdcs-{home.tag}-cache"  # noqa: S108 - a fixed name per home, mode 0700


def socket_path(home: GridHome) -> Path:
    return socket_dir(home) / "memcached.sock"


def url(home: GridHome) -> str:
    """`[cache] url` of rucio.cfg (pymemcache's form of a unix socket)."""
    return f"unix:{socket_path(home)}"


def uncached_url(home: GridHome) -> str:
    """`[cache] url` of a Rucio process that must run without the cache: a socket in the grid's own 0700
    directory where nothing listens, so Rucio's check at start fails and its cache regions are null. (Left out,
    the url would default to 127.0.0.1:11211, where any memcached of the machine could answer.)

    The reaper runs so. Given a cache, Rucio's reaper pauses an RSE for 120 s after every pass that found fewer
    replicas to delete than its chunk (`pause_deletion_<rse>`), so a purge of a few files (a data challenge's
    clean-up, a user's deletion) waits for that pause; without one, each pass looks again."""
    return f"unix:{socket_dir(home) / 'nothing-listens.sock'}"


def flush(home: GridHome) -> bool:
    """Empty the cache (True when a memcached answered). `up` does so after it changed the topology in Rucio:
    Rucio drops an RSE's own cached attributes and protocols when they change, but keeps the answer of every RSE
    expression (`rucio.core.rse_expression_parser`, 10 minutes) whatever changes, so a new rule could still go
    to the RSEs an expression selected before the change."""
    import pymemcache

    client = pymemcache.Client(str(socket_path(home)), connect_timeout=3, timeout=3)
    try:
        return bool(client.flush_all())
    except OSError:
        return False
    finally:
        client.close()


def prepare(home: GridHome) -> Path:
    """The socket's directory, owned by the caller and closed to everyone else (idempotent)."""
    where = socket_dir(home)
    where.mkdir(mode=0o700, exist_ok=True)
    if where.stat().st_uid != os.geteuid():
        raise GridStateError(f"{where} belongs to another user (uid {where.stat().st_uid}): the grid's cache socket "
                             "must be in a directory of its own user; remove it, or give the grid another home")
    where.chmod(0o700)
    return where


def command(home: GridHome, memory_mb: int = MEMORY_MB) -> list[str]:
    """memcached on the socket alone: -s turns TCP and UDP off, -a 0600 lets only the owner connect."""
    return ["memcached", "-s", str(socket_path(home)), "-a", "0600", "-m", str(memory_mb), "-c", str(CONNECTIONS),
            "-t", "2",
            # memcached refuses to run as root unless it is told whom to run as: the grid's own user
            "-u", getpass.getuser()]
