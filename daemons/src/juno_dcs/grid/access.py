"""Which directories the grid's programs that run under their own users can enter, and where their files go.

XRootD runs as `xrootd`, Squid drops to `proxy` and nginx's workers to `www-data`. Each of them must walk down to
the files it reads or writes: every directory on the way needs the search (x) bit for that user. A home under a
private directory (root's home is mode 0700 on Debian, `mktemp -d` makes 0700 directories) is out of their reach.

`juno-dcs up` decides once per home where those users' files live (the home's *service root*):
- the home itself, when every service user can enter it;
- otherwise `/var/lib/juno-dcs/<tag>`, owned by root with mode 0755, linked from `HOME/service-area`; the link
  records the choice, so later commands (and `down --purge`) find the files wherever the home is.
Nothing is started before this is settled; when no layout works, `up` stops with the directory, the user and
the fix.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from juno_dcs.errors import ConfigError
from juno_dcs.grid.home import SERVICE_AREA, GridHome

# program -> the user it runs as (Debian's packages create them)
SERVICE_USERS: dict[str, str] = {"XRootD": "xrootd", "Squid": "proxy", "nginx's workers": "www-data"}


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gids: frozenset[int]


def lookup(name: str) -> User | None:
    """The user `name` with its groups, or None when the system has no such user."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
    return User(name, entry.pw_uid, frozenset(groups))


def can_search(mode: int, owner: int, group: int, user: User) -> bool:
    """Whether `user` may pass through a directory of `mode`, `owner` and `group` (POSIX bits; root passes)."""
    if user.uid == 0:
        return True
    if user.uid == owner:
        return bool(mode & stat.S_IXUSR)
    if group in user.gids:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def blocking_directory(path: Path, user: User) -> Path | None:
    """The first existing directory on the way to `path` (itself included) that `user` cannot pass, or None.
    Directories that do not exist yet are made by `up` with mode 0755 and block nobody."""
    path = Path(os.path.abspath(path))
    for directory in [*reversed(path.parents), path]:
        try:
            info = directory.stat()
        except FileNotFoundError:
            return None
        if not can_search(info.st_mode, info.st_uid, info.st_gid, user):
            return directory
    return None


def service_users() -> list[tuple[str, User]]:
    """(program, user) of every service user present on this machine."""
    found = []
    for program, name in SERVICE_USERS.items():
        user = lookup(name)
        if user is not None:
            found.append((program, user))
    return found


def blocked(path: Path) -> list[tuple[str, User, Path]]:
    """(program, user, directory) for every service user that cannot reach `path`."""
    result = []
    for program, user in service_users():
        where = blocking_directory(path, user)
        if where is not None:
            result.append((program, user, where))
    return result


def describe(blocks: list[tuple[str, User, Path]]) -> str:
    """'the users xrootd (XRootD), proxy (Squid) cannot pass /root (drwx------, owner root)', one clause per
    blocking directory."""
    by_dir: dict[Path, list[str]] = {}
    for program, user, where in blocks:
        by_dir.setdefault(where, []).append(f"{user.name} ({program})")
    return "; ".join(f"the user{'s' if len(names) > 1 else ''} {', '.join(names)} cannot pass {where} "
                     f"({stat.filemode(where.stat().st_mode)}, owner {_owner(where)})"
                     for where, names in by_dir.items())


def _owner(path: Path) -> str:
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def settle_service_root(home: GridHome, area: Path = SERVICE_AREA) -> str | None:
    """Choose (once) and prepare the home's service root; returns a sentence for `up`'s report when the files
    go outside the home, None otherwise. Raises ConfigError, before anything starts, when no layout works."""
    link = home.service_link
    if link.is_symlink():
        target = home.service_root
        problems = blocked(target)
        if problems:
            raise ConfigError(f"{home.root}: the service area {target} (linked from {link}) is not reachable: "
                              f"{describe(problems)}; make every directory on the way searchable (chmod o+x) "
                              f"or `juno-dcs down --purge` this home and start it again")
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        return None
    problems = blocked(home.root)
    if not problems:
        return None
    target = area / home.tag
    still = blocked(target)
    if still:
        raise ConfigError(
            f"{home.root} is not reachable by the grid's service users: {describe(problems)}; and neither is "
            f"{target}: {describe(still)}. Fix: `chmod o+x` the directories named, or choose a home under a "
            f"directory others may enter (`--home /srv/juno-dcs/grid`, `/tmp/...`)"
        )
    area.mkdir(mode=0o755, parents=True, exist_ok=True)
    target.mkdir(mode=0o755, exist_ok=True)
    target.chmod(0o755)
    home.root.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return (f"{describe(problems)}: the files these users need (RSE data, XRootD and Squid files, the CA's "
            f"certificate, the WebUI's static files) are in {target}, linked from {link}")


def remove_service_area(home: GridHome) -> Path | None:
    """`down --purge`: remove the service area outside the home, if this home has one; returns it. A home deleted
    by hand has lost its link, but its area is still found by the home's tag."""
    if not home.service_link.is_symlink():
        orphan = SERVICE_AREA / home.tag
        if home.exists() or not orphan.is_dir():  # only a home without grid.json: no other grid uses the tag
            return None
        shutil.rmtree(orphan, ignore_errors=True)
        return orphan
    target = home.service_root
    if target.parent == SERVICE_AREA or target.is_relative_to(SERVICE_AREA):
        shutil.rmtree(target, ignore_errors=True)
    return target
