"""The grid's configuration files as versioned Docker configs.

Every container mounts the home, but a service that the swarm rolls back to its previous specification should also
get its previous configuration, not the files of the `up` that failed. So each configuration file a service reads
is also a Docker config, mounted over the home's copy at the same path, with the file's owner and mode. A config's
name carries a digest of its path and content: a changed file is a new config, which changes the specification of
exactly the services that read it (the swarm restarts them), and a rollback brings back the old config with the
old specification.

Which files a service reads is found from what it names: its command line and environment, then, in turn, the
files those name (a configuration that names another file, or a directory of them). A file not found this way is
still read from the mounted home, as before."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BYTES = 500 * 1024  # Docker's limit on a config's size
NOT_CONFIGS = frozenset({"stack.yml", "stack-databases.yml"})  # read by `up`, not by a service


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    name: str  # the config's name in the stack file: cfg-<digest of path and content>
    text: str
    uid: int
    gid: int
    mode: int


def candidates(roots: Iterable[Path], extra: Iterable[Path] = ()) -> dict[Path, ConfigFile]:
    """Every configuration file the grid renders: the regular text files under `roots` (the home's etc) and the
    `extra` ones (the Squids' squid.conf), each as a config."""
    paths = [p for root in roots if root.is_dir() for p in sorted(root.rglob("*"))] + list(extra)
    out = {}
    for path in paths:
        if not path.is_file() or path.is_symlink() or path.name in NOT_CONFIGS:
            continue
        info = path.stat()
        if info.st_size > MAX_BYTES:
            continue
        data = path.read_bytes()
        try:
            text = data.decode()
        except UnicodeDecodeError:
            continue
        digest = hashlib.sha256(str(path).encode() + b"\0" + data).hexdigest()[:20]
        out[path] = ConfigFile(path=path, name=f"cfg-{digest}", text=text, uid=info.st_uid, gid=info.st_gid,
                               mode=info.st_mode & 0o777)
    return out


def _named(text: str, path: Path) -> bool:
    """Whether `text` names `path` as a whole path (not as the start of a longer one)."""
    return re.search(re.escape(str(path)) + r"(?![\w./-])", text) is not None


def read_by(texts: Iterable[str], files: Mapping[Path, ConfigFile], too_wide: Iterable[Path] = ()) -> list[Path]:
    """The files a service reads: those its texts name, the files in a directory they name (one inside the
    directories `too_wide`, such as the home's etc, but not those themselves), and so on through what those files
    name."""
    wide = {Path(p) for p in too_wide}
    dirs = {parent for p in files for parent in p.parents
            if parent not in wide and any(parent.is_relative_to(w) for w in wide)}
    found: set[Path] = set()
    queue = list(texts)
    while queue:
        text = queue.pop()
        hits = {p for p in files if p not in found and _named(text, p)}
        hits |= {p for d in dirs if _named(text, d) for p in files if p not in found and p.is_relative_to(d)}
        found |= hits
        queue += [files[p].text for p in hits]
    return sorted(found)


def is_secret(cfg: ConfigFile) -> bool:
    """A file only its owner may read (passwords, tokens' keys inside) goes as a Docker secret, not a config."""
    return cfg.mode & 0o077 == 0


@dataclass
class Attached:
    configs: dict[str, dict[str, str]]  # the stack file's `configs` section
    secrets: dict[str, dict[str, str]]  # ... and the files' part of its `secrets` section


def attach(services: dict[str, dict[str, Any]], files: Mapping[Path, ConfigFile],
           too_wide: Iterable[Path] = ()) -> Attached:
    """Mount into each service the configs (or, for files only their owner reads, the secrets) of the files it
    reads, each at its own path with its owner and mode."""
    out = Attached(configs={}, secrets={})
    wide = list(too_wide)
    for spec in services.values():
        texts = [*map(str, spec.get("command", [])), *map(str, spec.get("environment", {}).values())]
        for path in read_by(texts, files, wide):
            cfg = files[path]
            kind = "secrets" if is_secret(cfg) else "configs"
            getattr(out, kind)[cfg.name] = {"file": str(path)}
            spec.setdefault(kind, []).append({"source": cfg.name, "target": str(path), "uid": str(cfg.uid),
                                              "gid": str(cfg.gid), "mode": cfg.mode})
    out.configs, out.secrets = dict(sorted(out.configs.items())), dict(sorted(out.secrets.items()))
    return out
