"""The grid's container images: a Debian 12 base made from Debian's own packages, the runtime image (the grid's
Debian packages and this installation), and one image per role on top of it.

No registry is needed: the base is a root filesystem from `mmdebstrap` turned into an image with `docker import`.
The runtime image is tagged with a digest of everything it is built from, so a build that finds its tag does
nothing. Each role of the grid's own software is that same image under the role's name, so that a host stores that
software once; the databases' roles have layers of their own on the base (docker/<role>.Dockerfile).
"""

from __future__ import annotations

import hashlib
import logging
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from juno_dcs.errors import ConfigError, ServiceError
from juno_dcs.swarm.engine import Engine

logger = logging.getLogger(__name__)

REPO = "juno-dcs"
SUITE = "bookworm"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
LOCAL_CAS = Path("/usr/local/share/ca-certificates")  # the host's own authorities: the image trusts them too
# role -> what runs from it (docs/deploy.md); every program of the grid maps to one (stack.role_of)
ROLES: dict[str, str] = {
    "rucio-server": "the Rucio REST API and authentication server",
    "rucio-daemons": "Rucio's judge, conveyor, reaper, undertaker, abacus, transmogrifier and hermes",
    "services": "the ingestor, transfer service and workers, dispatcher and agent, production manager, conditions "
                "service, probes, dashboard, token issuer, db-stats",
    "webui": "the Rucio WebUI and its nginx",
    "storage": "an XRootD storage element",
    "squid": "a site's Squid in front of the conditions service",
    "kafka": "Apache Kafka and its ZooKeeper",
    "activemq": "ActiveMQ, hermes' broker",
    "pilot": "a site's pilot factory and its pilots",
}
# roles with layers of their own on the base image (docker/<role>.Dockerfile and its entrypoint): the databases of
# a stack that runs its own (swarm/databases.py)
OWN_ROLES: dict[str, str] = {
    "postgres": "PostgreSQL 15: the catalogue, the dispatcher, the issuer and the probes",
    "mariadb": "MariaDB 10.11: the condition data",
}


def checkout() -> Path:
    """The installation's source tree (the venv's parent): the images' build context."""
    root = Path(sys.prefix).parent
    if not (root / "docker" / "Dockerfile").exists():
        raise ConfigError(f"{root} is not a checkout of the project (no docker/Dockerfile): images are built from one")
    return root


def base_tag() -> str:
    return f"{REPO}/base:{SUITE}"


def _files(root: Path) -> list[Path]:
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        raise ServiceError(f"git ls-files in {root}: {listed.stderr.strip()}")
    names = [n for n in listed.stdout.split("\0") if n and not n.startswith(NOT_IN_IMAGE) and not n.endswith(".md")]
    staged = sorted(p for p in (root / STAGED).rglob("*") if p.is_file())
    tracked = sorted(root / n for n in names if (root / n).is_file())
    return [*tracked, root / "var" / "lib" / "bind_loopback.so", *staged]


NOT_IN_IMAGE = ("docs/", "tests/", "benchmarks/")  # left out of the build context too (.dockerignore)
STAGED = Path("var/build")  # what the build stages for docker/Dockerfile, inside its context


def requirements(root: Path) -> list[str]:
    """The third-party requirements of the grid's three distributions (the grid extra included): the image
    installs them in a layer of their own, before the project's code."""
    wanted = {"daemons": ["grid"], "policy": [], "probes": []}
    found: list[str] = []
    for dist, extras in wanted.items():
        project = tomllib.loads((root / dist / "pyproject.toml").read_text())["project"]
        found += project.get("dependencies", [])
        for extra in extras:
            found += project["optional-dependencies"][extra]
    return [r for r in found if not r.startswith("juno-")]  # the distributions themselves come with the code


def stage(root: Path) -> None:
    """Stage the build's inputs from outside the checkout's files: the host's local certificate authorities,
    the requirements and their pins."""
    target = root / STAGED
    shutil.rmtree(target, ignore_errors=True)
    (target / "ca-certificates").mkdir(parents=True)
    for crt in sorted(LOCAL_CAS.glob("**/*.crt")) if LOCAL_CAS.is_dir() else []:
        shutil.copyfile(crt, target / "ca-certificates" / crt.name)
    (target / "requirements.txt").write_text("\n".join(requirements(root)) + "\n")
    shutil.copyfile(root / "constraints.txt", target / "constraints.txt")


def context_digest(root: Path, build_args: dict[str, str]) -> str:
    """A digest of the build context (the tracked and untracked files, the lock of the npm packages, the built
    shim) and the build arguments: the runtime image's tag."""
    h = hashlib.sha256()
    for key in sorted(build_args):
        h.update(f"{key}={build_args[key]}\n".encode())
    for path in _files(root):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes() if path.exists() else b"(missing)")
    return h.hexdigest()[:12]


@dataclass
class BuildReport:
    tags: dict[str, str] = field(default_factory=dict)  # role (and "base", "runtime") -> image tag
    built: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)


def build_args(root: Path) -> dict[str, str]:
    try:
        xrootd = pwd.getpwnam("xrootd")
    except KeyError as exc:
        raise ConfigError("no xrootd user on this host: run `make setup` before building the images") from exc
    return {"PREFIX": str(root), "XROOTD_UID": str(xrootd.pw_uid), "XROOTD_GID": str(xrootd.pw_gid)}


def exists(engine: Engine, tag: str) -> bool:
    return engine.run("image", "inspect", tag, check=False).returncode == 0


def build_base(engine: Engine, report: BuildReport, force: bool = False) -> str:
    tag = base_tag()
    report.tags["base"] = tag
    if exists(engine, tag) and not force:
        return tag
    started = time.monotonic()
    sources = DEBIAN_SOURCES.read_text() if DEBIAN_SOURCES.exists() else \
        f"deb http://deb.debian.org/debian {SUITE} main\n"
    with tempfile.TemporaryDirectory(prefix="juno-dcs-base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        made = subprocess.run(["mmdebstrap", "--variant=minbase", "--include=ca-certificates", SUITE, str(tarball),
                               "-"], input=sources, capture_output=True, text=True, check=False)
        if made.returncode != 0:
            raise ServiceError(f"mmdebstrap could not make the base root filesystem: {made.stderr.strip()[-800:]}")
        engine.run("import", "--change", "ENV LANG=C.UTF-8", str(tarball), tag, timeout=900)
    report.built.append(tag)
    report.seconds["base"] = round(time.monotonic() - started, 1)
    return tag


def build(engine: Engine, force: bool = False) -> BuildReport:
    """Build what is missing: the base, the runtime image, the role images. Safe to repeat."""
    root = checkout()
    if not (root / "var" / "lib" / "bind_loopback.so").exists() or not (root / "node_modules").is_dir():
        raise ConfigError(f"{root}: run `make setup` first (the images take its npm packages and built shim)")
    report = BuildReport()
    base = build_base(engine, report, force)
    stage(root)
    args = build_args(root)
    runtime = f"{REPO}/runtime:{context_digest(root, {**args, 'BASE': base})}"
    report.tags["runtime"] = runtime
    if force or not exists(engine, runtime):
        started = time.monotonic()
        flags = [a for k, v in {**args, "BASE": base}.items() for a in ("--build-arg", f"{k}={v}")]
        proc = engine.run("build", "--network", "host", "-f", str(root / "docker" / "Dockerfile"), *flags,
                          "--label", f"org.juno-dcs.prefix={root}", "-t", runtime, str(root),
                          check=False, timeout=3600)
        if proc.returncode != 0:
            raise ServiceError(f"building {runtime} failed:\n{(proc.stdout + proc.stderr).strip()[-2000:]}")
        report.built.append(runtime)
        report.seconds["runtime"] = round(time.monotonic() - started, 1)
    digest = runtime.rsplit(":", 1)[1]
    for role in ROLES:
        tag = f"{REPO}/{role}:{digest}"
        report.tags[role] = tag
        if force or not exists(engine, tag):
            # a tag of the runtime image: a build step would copy the whole image once more under vfs, for a label
            engine.run("tag", runtime, tag)
            report.built.append(tag)
    for role in OWN_ROLES:
        report.tags[role] = build_own(engine, root, role, base, report, force)
    report.removed = remove_old(engine, set(report.tags.values()))
    return report


def own_digest(root: Path, role: str, base_id: str) -> str:
    """A digest of an own-layer role's inputs: its Dockerfile, its entrypoint and the base image it starts from."""
    h = hashlib.sha256(base_id.encode() + b"\0")
    for path in (root / "docker" / f"{role}.Dockerfile", root / "docker" / f"{role}-entrypoint.sh"):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def build_own(engine: Engine, root: Path, role: str, base: str, report: BuildReport, force: bool) -> str:
    """Build a role image with layers of its own from docker/<role>.Dockerfile (context: docker/)."""
    base_id = engine.run("image", "inspect", "--format", "{{.Id}}", base).stdout.strip()
    tag = f"{REPO}/{role}:{own_digest(root, role, base_id)}"
    if exists(engine, tag) and not force:
        return tag
    started = time.monotonic()
    proc = engine.run("build", "--network", "host", "-f", str(root / "docker" / f"{role}.Dockerfile"),
                      "--build-arg", f"BASE={base}", "-t", tag, str(root / "docker"), check=False, timeout=1800)
    if proc.returncode != 0:
        raise ServiceError(f"building {tag} failed:\n{(proc.stdout + proc.stderr).strip()[-2000:]}")
    report.built.append(tag)
    report.seconds[role] = round(time.monotonic() - started, 1)
    return tag


def remove_old(engine: Engine, current: set[str]) -> list[str]:
    """Untag the images of earlier builds (vfs keeps each in full); one that a container still uses stays."""
    listed = engine.run("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={REPO}/*")
    old = [t for t in listed.stdout.split() if t not in current and t != base_tag()]
    removed = [t for t in old if engine.run("rmi", t, check=False).returncode == 0]
    engine.run("image", "prune", "-f", check=False)
    return removed


def sizes(engine: Engine, tags: list[str]) -> dict[str, int]:
    """Each image's size in bytes, as the engine reports it."""
    out = {}
    for tag in tags:
        proc = engine.run("image", "inspect", "--format", "{{.Size}}", tag, check=False)
        if proc.returncode == 0:
            out[tag] = int(proc.stdout.strip())
    return out
