"""The package's own data files (juno_dcs/data), found with importlib.resources, and the operator's overrides.

    data/templates/<name>      the config templates that `juno-dcs up` renders into a grid home
    data/topology.yaml         the grid's shape (docs/topology.md)
    data/placement/*.yaml      the data placement policy: raw.yaml, production.yaml, user.yaml (docs/placement.md)
    data/wms-retry.yaml        the dispatcher's retry rules (docs/wms.md)
    data/wms-errors.yaml       the dispatcher's failure classes (docs/wms.md)
    data/native/               the C source of the XRootD loopback shim (juno_dcs.grid.assets builds it)
    data/npm/                  package.json and package-lock.json: Kafka's jars, Chart.js, the WebUI's CDN files

`config_file(override_dir, name)` is the one rule for every configuration file: the operator's
`override_dir/name` when it exists (a directory such as placement/ is taken as a whole), else the package's.
Nothing here reads a source checkout: a wheel installed anywhere carries all of these.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from juno_dcs.errors import ConfigError

# The files the package must carry: the wheel test and `data_file` check against it.
CONFIG_FILES: tuple[str, ...] = (
    "topology.yaml", "wms-retry.yaml", "wms-errors.yaml", "placement/raw.yaml", "placement/production.yaml",
    "placement/user.yaml",
)


def data_dir() -> Path:
    """The package's data directory on disk (the package must be installed unzipped, as pip does)."""
    root = files("juno_dcs") / "data"
    if not isinstance(root, Path):  # a zipped import: templates must be real files for the programs that read them
        raise ConfigError(f"juno_dcs is imported from an archive ({root}); install it with pip, unzipped")
    return root


def data_file(name: str) -> Path:
    """The package's own `name` (a path relative to juno_dcs/data, '/'-separated)."""
    path = data_dir().joinpath(*name.split("/"))
    if not path.exists():
        raise ConfigError(f"{path}: missing from the installed juno-dcs package (reinstall it)")
    return path


def config_file(override_dir: Path | None, name: str) -> Path:
    """`override_dir/name` when the operator put one there, else the package's own `name`."""
    if override_dir is not None:
        candidate = override_dir.joinpath(*name.split("/"))
        if candidate.exists():
            return candidate
    return data_file(name)
