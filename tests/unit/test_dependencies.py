"""Every module the three distributions import is the standard library's, their own, or a declared dependency
(the base or a non-dev extra): an installed wheel never meets a ModuleNotFoundError that pip could have
prevented. The few exceptions below say why."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
SOURCES = {
    "juno-dcs": CHECKOUT / "daemons" / "src" / "juno_dcs",
    "juno-rucio-policy": CHECKOUT / "policy" / "src" / "juno_rucio_policy",
    "juno-probes": CHECKOUT / "probes" / "src" / "juno_probes",
}
# module -> why no distribution may declare it
NOT_FROM_PYPI = {
    "gfal2": "Debian's python3-gfal2 (PyPI's gfal2-python does not build against Debian's gfal2); "
             "`make setup` links it into the venv",
    "XRootD": "Debian's python3-xrootd, XRootD's own client built against Debian's XRootD 5.5 (PyPI's xrootd builds "
              "its own from source); `make setup` links it into the venv",
}
# (distribution, module) -> why it is left undeclared
HOST_PROVIDED = {
    ("juno-rucio-policy", "rucio"): "the Rucio that loads the policy package: `rucio` on servers, `rucio-clients` on "
                                    "clients; declaring one conflicts with the other",
    ("juno-probes", "rucio"): "the probes use whichever Rucio client is installed (`rucio` or `rucio-clients`)",
}


def _top_level_imports(package: Path) -> dict[str, list[str]]:
    """Absolute imports of every module under `package`: top-level module name -> files importing it."""
    found: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(str(path.relative_to(CHECKOUT)))
    return found


def _declared(dist: str) -> set[str]:
    """Normalised names of the distributions `dist` requires, without its dev extra."""
    names = set()
    for requirement in requires(dist) or []:
        if re.search(r"""extra\s*==\s*["']dev["']""", requirement):
            continue
        names.add(re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0])
    return {_normalise(n) for n in names} | {_normalise(dist)}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("dist", sorted(SOURCES))
def test_every_import_is_a_declared_dependency(dist: str) -> None:
    owners = packages_distributions()
    declared = _declared(dist)
    missing = []
    for module, files in sorted(_top_level_imports(SOURCES[dist]).items()):
        if module in sys.stdlib_module_names or module in NOT_FROM_PYPI or (dist, module) in HOST_PROVIDED:
            continue
        providers = {_normalise(d) for d in owners.get(module, [])}
        if not providers & declared:
            missing.append(f"{module} (from {', '.join(sorted(providers)) or 'nothing installed'}; "
                           f"imported by {files[0]})")
    assert not missing, f"{dist} imports undeclared distributions: {missing}"


def test_the_exceptions_are_still_imported() -> None:
    """An exception for a module nobody imports any more is stale: drop it."""
    imported = {(dist, module) for dist, path in SOURCES.items() for module in _top_level_imports(path)}
    assert set(HOST_PROVIDED) <= imported
    assert all(any(module == m for _, m in imported) for module in NOT_FROM_PYPI)
