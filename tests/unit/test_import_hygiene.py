"""Import hygiene of the three distributions: every module imports on its own in any order, no module reaches
into another's private names, no `noqa: E402` hides an import below code, and the venv's requirements hold.

The import test runs fresh interpreters (a module that works only after another was imported first fails there);
its orders are shuffled with a seed printed in the test's output, so a failing order can be replayed with
JUNO_IMPORT_SEED=<seed>.
"""

from __future__ import annotations

import ast
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"juno_dcs": ROOT / "daemons/src/juno_dcs", "juno_probes": ROOT / "probes/src/juno_probes",
           "juno_rucio_policy": ROOT / "policy/src/juno_rucio_policy"}
ORDERS = 3  # fresh interpreters, each importing every module in its own shuffled order
# The ASGI entry modules build their app from the configuration file named in the environment when uvicorn's
# worker processes import them by name; that is their job, so they are left out here.
ENTRY_MODULES = ("juno_dcs.conditions.asgi", "juno_dcs.transfer.asgi", "juno_dcs.wms.asgi")
# juno_rucio_policy.schema extends Rucio's schema, whose import reads Rucio's configuration
RUCIO_CFG = "[common]\n[client]\nrucio_host = http://127.0.0.1:1\nauth_host = http://127.0.0.1:1\naccount = root\n" \
            "auth_type = userpass\n[policy]\npermission = generic\nschema = generic\n"


def _modules() -> list[str]:
    names = []
    for package, directory in SOURCES.items():
        for path in sorted(directory.rglob("*.py")):
            parts = [package, *path.relative_to(directory).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join(parts))
    return names


def _python_files() -> Iterator[tuple[str, Path]]:
    for module in _modules():
        package, *rest = module.split(".")
        path = SOURCES[package].joinpath(*rest)
        yield module, (path / "__init__.py" if path.is_dir() else path.with_suffix(".py"))


IMPORT_ALL = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ":\\n" + traceback.format_exc(limit=3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


@pytest.mark.timeout(600)
def test_every_module_imports_in_any_order(tmp_path: Path) -> None:
    seed = int(os.environ.get("JUNO_IMPORT_SEED", random.SystemRandom().randrange(2**32)))
    print(f"import orders from seed {seed} (replay: JUNO_IMPORT_SEED={seed})")
    modules = [m for m in _modules() if m not in ENTRY_MODULES]
    assert len(modules) > 150
    (tmp_path / "rucio.cfg").write_text(RUCIO_CFG)
    env = {**os.environ, "RUCIO_CONFIG": str(tmp_path / "rucio.cfg")}
    rng = random.Random(seed)  # noqa: S311 - shuffles import orders, replayable from the seed
    for n in range(ORDERS):
        order = modules[:]
        rng.shuffle(order)
        proc = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", IMPORT_ALL, *order],
                              capture_output=True, text=True, timeout=180, check=False, env=env, cwd=tmp_path)
        assert proc.returncode == 0, f"seed {seed}, order {n}: these modules did not import:\n{proc.stdout}" \
                                     f"{proc.stderr[-3000:]}"


def _where(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _private_imports(module: str, path: Path) -> list[str]:
    """`from other.module import _name` (or `import other._module`) in `module`: a private name of another module."""
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if any(part.startswith("_") and not part.startswith("__") for part in base.split(".")):
                found.append(f"{_where(path)}:{node.lineno}: from {base} import ...")
            found += [f"{_where(path)}:{node.lineno}: from {base} import {alias.name}"
                      for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__") and base != module]
        elif isinstance(node, ast.Import):
            found += [f"{_where(path)}:{node.lineno}: import {alias.name}" for alias in node.names
                      if any(p.startswith("_") and not p.startswith("__") for p in alias.name.split("."))]
    return found


def test_no_module_imports_a_private_name_of_another() -> None:
    offenders = [line for module, path in _python_files() for line in _private_imports(module, path)]
    assert offenders == [], "private names imported across modules:\n" + "\n".join(offenders)


def test_the_private_import_scan_finds_one(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text("from juno_dcs.cli import _settings\nfrom juno_dcs import errors\nimport os._x\n"
                    "from . import _helper\n")
    assert [line.split(": ", 1)[1] for line in _private_imports("juno_dcs.grid.mod", path)] == [
        "from juno_dcs.cli import _settings", "import os._x", "from juno_dcs.grid import _helper"]


def test_no_noqa_hides_an_import_below_code() -> None:
    """E402 (module-import-not-at-top-of-file) is an error in pyproject.toml; no line may silence it."""
    hidden = [f"{path.relative_to(ROOT)}:{n}" for _, path in _python_files()
              for n, line in enumerate(path.read_text().splitlines(), 1) if "noqa: E402" in line]
    assert hidden == []


@pytest.mark.timeout(120)
def test_pip_check_passes() -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=110,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_module_imports_the_juno_dcs_command_back() -> None:
    """juno_dcs.cli imports its sub-commands at its top; none of them (nor anything else) imports it."""
    importers = []
    for module, path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
                     if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if module != "juno_dcs.cli" and "juno_dcs.cli" in names:
                importers.append(f"{_where(path)}:{node.lineno}")
    assert importers == []
