"""The three wheels, installed into a fresh venv outside the checkout, run a whole grid from any directory.

The venv is made the way the Makefile makes the checkout's (Debian's Python 3.11, `-c constraints.txt`, Debian's
gfal2 binding linked in), but from the built wheels instead of editable sources. Only what a wheel cannot carry
comes from the checkout, through its settings: npm's node_modules (Kafka's jars), the XRootD shim and the CA.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CHECKOUT, free_base_port

DEBIAN_PYTHON = Path("/usr/bin/python3")
DEBIAN_GFAL2 = Path("/usr/lib/python3/dist-packages/gfal2.cpython-311-x86_64-linux-gnu.so")

pytestmark = [
    pytest.mark.slow,  # three wheels and their dependencies into a new venv (about a minute), then a grid's life
    # a new venv, a grid up (1-3 minutes), status, down --purge
    pytest.mark.timeout(1500),
]


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{cmd} failed with {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a shell that has only the new venv: nothing of the checkout's venv or settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUNO_", "RUCIO_", "VIRTUAL_ENV", "PYTHON", "X509_", "SSL_CERT"))}
    env["PATH"] = f"{venv / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return env


def _fresh_venv(root: Path, wheels: list[Path]) -> Path:
    venv = root / "venv"
    subprocess.run([str(DEBIAN_PYTHON), "-m", "venv", str(venv)], check=True, timeout=120)
    env = _clean_env(venv)
    dcs = next(w for w in wheels if w.name.startswith("juno_dcs-"))
    others = [str(w) for w in wheels if w != dcs]
    _run([str(venv / "bin" / "pip"), "install", "--quiet", "-c", str(CHECKOUT / "constraints.txt"),
          f"{dcs}[grid]", *others], cwd=root, env=env)
    gfal = venv / "debian-gfal2"  # as the Makefile links Debian's gfal2 and XRootD bindings into the checkout's venv
    gfal.mkdir()
    for binding in (DEBIAN_GFAL2, DEBIAN_GFAL2.parent / "XRootD", DEBIAN_GFAL2.parent / "pyxrootd"):
        (gfal / binding.name).symlink_to(binding)
    (venv / "lib" / "python3.11" / "site-packages" / "debian-gfal2.pth").write_text(f"{gfal}\n")
    return venv


@pytest.mark.skipif(not DEBIAN_GFAL2.exists(), reason="needs Debian's python3-gfal2 (make setup)")
def test_the_wheels_run_a_grid_from_outside_the_checkout(grid_tmp: Path) -> None:
    started = time.monotonic()
    build = grid_tmp / "wheels"
    subprocess.run([sys.executable, str(CHECKOUT / "scripts" / "build_wheels.py"), str(build)], check=True,
                   capture_output=True, timeout=600)
    wheels = sorted(build.glob("*.whl"))
    assert [w.name.split("-")[0] for w in wheels] == ["juno_dcs", "juno_probes", "juno_rucio_policy"]
    venv = _fresh_venv(grid_tmp, wheels)
    juno_dcs = str(venv / "bin" / "juno-dcs")
    elsewhere = grid_tmp / "elsewhere"  # the working directory: neither the checkout nor the venv
    elsewhere.mkdir()
    env = _clean_env(venv)

    version = _run([juno_dcs, "--version"], cwd=elsewhere, env=env).stdout.strip()
    assert version.startswith("juno-dcs 0.2.0, juno-rucio-policy 0.2.0, juno-probes 0.2.0, rucio 41.5.1"), version
    location = _run([str(venv / "bin" / "python"), "-c", "import juno_dcs; print(juno_dcs.__file__)"],
                    cwd=elsewhere, env=env).stdout.strip()
    assert location.startswith(str(venv)), location  # the wheel's copy, not the checkout's sources

    # without the assets, `up` names the setting and the command that makes it
    missing = subprocess.run([juno_dcs, "up", "--home", str(grid_tmp / "none")], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert missing.returncode != 0, missing.stderr
    assert not (grid_tmp / "none").exists()  # stopped before writing anything
    assert "JUNO_DCS_NODE_MODULES" in missing.stderr
    assert "juno-dcs install-assets node" in missing.stderr

    env |= {"JUNO_DCS_NODE_MODULES": str(CHECKOUT / "node_modules"),
            "JUNO_DCS_BIND_SHIM": str(CHECKOUT / "var" / "lib" / "bind_loopback.so"),
            "JUNO_DCS_PKI_DIR": str(CHECKOUT / "var" / "pki"),
            # what is tested is the installation, not start-up speed: on a shared 2-core machine under a load of
            # 60 the Rucio server once took longer than the default 120 s to answer
            "JUNO_DCS_START_TIMEOUT": "600"}
    home = grid_tmp / "home"
    installed = time.monotonic()
    try:
        up = _run([juno_dcs, "up", "--home", str(home), "--base-port", str(free_base_port())], cwd=elsewhere,
                  env=env, timeout=900)
        assert f"grid created in {home}" in up.stdout, up.stdout
        status = subprocess.run([juno_dcs, "status", "--home", str(home)], cwd=elsewhere, env=env,
                                capture_output=True, text=True, timeout=120, check=False)
        assert status.returncode == 0, status.stdout + status.stderr
        supervisord = (home / "etc" / "supervisord.conf").read_text()
        assert str(venv / "bin") in supervisord  # the grid's programs are the wheel's console scripts
        assert str(CHECKOUT / "daemons") not in supervisord
    finally:
        down = subprocess.run([juno_dcs, "down", "--purge", "--home", str(home)], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not home.exists()
    print(f"wheels and venv {installed - started:.0f} s, grid up/status/down {time.monotonic() - installed:.0f} s")
