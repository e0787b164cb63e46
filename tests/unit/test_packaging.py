"""The juno-dcs wheel carries its templates and default configs; the package reads no file of a source checkout;
the operator's override directory replaces exactly what it holds; the assets a wheel cannot carry are made from
the package, or named with their setting when they are missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from juno_dcs import packaged
from juno_dcs.errors import ConfigError
from juno_dcs.grid import assets
from juno_dcs.settings import GridSettings

CHECKOUT = Path(__file__).resolve().parents[2]
DATA = CHECKOUT / "daemons" / "src" / "juno_dcs" / "data"


def _data_files() -> set[str]:
    """The files of juno_dcs/data as the wheel must name them."""
    return {"juno_dcs/data/" + p.relative_to(DATA).as_posix() for p in DATA.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_wheel_carries_the_templates_and_default_configs(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(CHECKOUT / "scripts" / "build_wheels.py"), str(tmp_path), "daemons"],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = tmp_path.glob("juno_dcs-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _data_files()
    assert {f"juno_dcs/data/templates/{t}" for t in ("rucio.cfg", "supervisord.conf", "xrootd.cfg", "squid.conf",
                                                     "nginx.conf", "alembic.ini")} <= expected
    assert {f"juno_dcs/data/{name}" for name in packaged.CONFIG_FILES} <= expected
    assert "juno_dcs/data/native/bind_loopback.c" in expected
    assert {"juno_dcs/data/npm/package.json", "juno_dcs/data/npm/package-lock.json"} <= expected
    assert not expected - names, f"missing from {wheel.name}: {sorted(expected - names)}"
    assert "juno_dcs/py.typed" in names
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
    assert not [n for n in names if n.startswith(("etc/", "var/", "node_modules/"))]


def test_the_package_data_patterns_take_in_migration_scripts(tmp_path: Path) -> None:
    """Alembic scripts under a package (migrations/ with versions/, its .ini and .mako) travel in the wheel
    wherever they sit; compiled files never do."""
    source = tmp_path / "daemons"
    shutil.copytree(CHECKOUT / "daemons", source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    migrations = source / "src" / "juno_dcs" / "transfer" / "migrations"
    (migrations / "versions" / "__pycache__").mkdir(parents=True)
    for name in ("alembic.ini", "env.py", "script.py.mako", "versions/0001_first.py",
                 "versions/__pycache__/0001_first.cpython-311.pyc"):
        (migrations / name).write_text("# a migration file\n")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                    str(tmp_path / "out"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "out").glob("juno_dcs-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    prefix = "juno_dcs/transfer/migrations/"
    assert {prefix + n for n in ("alembic.ini", "env.py", "script.py.mako", "versions/0001_first.py")} <= names
    assert not [n for n in names if n.endswith(".pyc")]


def test_no_module_finds_files_through_the_source_checkout() -> None:
    offenders = []
    for src in ("daemons/src", "policy/src", "probes/src"):
        for path in (CHECKOUT / src).rglob("*.py"):
            text = path.read_text()
            if "parents[" in text or "CHECKOUT" in text:
                offenders.append(str(path.relative_to(CHECKOUT)))
    assert not offenders, f"modules reaching into a checkout: {offenders}"


def test_the_package_data_is_what_the_settings_find() -> None:
    settings = GridSettings(etc_dir=Path("/nonexistent-overrides"))
    assert settings.topology_file == packaged.data_dir() / "topology.yaml"
    assert settings.placement_dir == packaged.data_dir() / "placement"
    assert settings.wms_retry_file == packaged.data_dir() / "wms-retry.yaml"
    assert settings.template("rucio.cfg") == packaged.data_dir() / "templates" / "rucio.cfg"
    assert packaged.data_dir() == DATA  # the editable install reads the source tree's data directly


def test_an_override_directory_replaces_exactly_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "squid.conf").write_text("# mine\n")
    (tmp_path / "topology.yaml").write_text("sites: {}\n")
    settings = GridSettings(etc_dir=tmp_path)
    assert settings.topology_file == tmp_path / "topology.yaml"
    assert settings.template("squid.conf") == tmp_path / "templates" / "squid.conf"
    assert settings.template("rucio.cfg") == DATA / "templates" / "rucio.cfg"
    assert settings.placement_dir == DATA / "placement"
    shutil.copytree(DATA / "placement", tmp_path / "placement")
    assert GridSettings(etc_dir=tmp_path).placement_dir == tmp_path / "placement"
    assert GridSettings(etc_dir=tmp_path, topology=DATA / "topology.yaml").topology_file == DATA / "topology.yaml"


def test_a_file_missing_from_the_package_is_named() -> None:
    with pytest.raises(ConfigError, match=r"templates/nothing\.conf: missing from the installed juno-dcs package"):
        GridSettings(etc_dir=Path("/nonexistent-overrides")).template("nothing.conf")


def test_the_asset_defaults_are_in_the_installations_share_directory() -> None:
    share = Path(sys.prefix) / "share" / "juno-dcs"
    settings = GridSettings()
    assert (settings.node_modules, settings.bind_shim, settings.pki_dir, settings.etc_dir) == (
        share / "node_modules", share / "bind_loopback.so", share / "pki", share / "etc")


def test_the_environment_moves_each_asset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("NODE_MODULES", "BIND_SHIM", "PKI_DIR", "ETC_DIR"):
        monkeypatch.setenv(f"JUNO_DCS_{name}", str(tmp_path / name.lower()))
    settings = GridSettings()
    assert settings.node_modules == tmp_path / "node_modules"
    assert settings.bind_shim == tmp_path / "bind_shim"
    assert settings.pki_dir == tmp_path / "pki_dir"
    assert settings.etc_dir == tmp_path / "etc_dir"


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_the_shim_is_built_from_the_package_source_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "lib" / "bind_loopback.so"
    link = tmp_path / "share" / "bind_loopback.so"
    link.parent.mkdir()
    link.symlink_to(target)  # as `make setup` links the venv's default to the checkout's var/lib
    assert assets.build_shim(link) is True
    assert target.is_file()
    assert link.is_symlink()
    assert b"bind" in target.read_bytes()
    assert assets.build_shim(link) is False  # newer than its source: nothing to do
    assert assets.require_shim(GridSettings(bind_shim=link)) == link


def test_a_missing_shim_without_a_compiler_names_the_setting(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    monkeypatch.setattr(assets.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError) as info:
        assets.require_shim(GridSettings(bind_shim=tmp_path / "bind_loopback.so"))
    assert "JUNO_DCS_BIND_SHIM" in str(info.value)
    assert "juno-dcs install-assets shim" in str(info.value)


def test_npm_packages_are_not_installed_over_another_project(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "someone-else"}\n')
    with pytest.raises(ConfigError, match="another npm project's"):
        assets.install_node(tmp_path / "node_modules")
    with pytest.raises(ConfigError, match="named node_modules"):
        assets.install_node(tmp_path / "modules")


def test_the_checkout_node_modules_is_what_the_package_pins() -> None:
    """`make setup` installed the package's package-lock.json into the checkout's node_modules (the root's npm
    files are links to the package's), so `install-assets node` has nothing to do there."""
    node_modules = GridSettings().node_modules
    if not node_modules.exists():
        pytest.skip("no node_modules: `make setup` has not run")
    assert (CHECKOUT / "package-lock.json").resolve() == DATA / "npm" / "package-lock.json"
    assert assets.node_installed(node_modules)
    assert assets.require_kafka(GridSettings()).is_dir()
    assert assets.chartjs(node_modules).is_file()


def test_install_refuses_an_unknown_asset() -> None:
    with pytest.raises(ConfigError, match="unknown asset"):
        assets.install(GridSettings(), ("everything",))
