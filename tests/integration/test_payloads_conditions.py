"""cal against a running grid's real conditions service and Squids: `juno-payload make-conditions --home` builds
a locked tag through the grid's writer account, and `juno-payload cal` reads it through JUNO_CONDITIONS_URLS (a
dead proxy, the IHEP Squid, the service), then rec gives back the electrons' energy.

The grid is the test session's (a tag with a unique name is added to it)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from juno_dcs.payloads import elecsim
from juno_dcs.payloads.cli import main
from juno_dcs.payloads.detsim import run as detsim
from juno_dcs.payloads.grammar import check
from tests.conftest import Grid

BIN = Path(sys.executable).parent
PAYLOAD = str(BIN / "juno-payload")


@dataclass(frozen=True)
class GridConditions:
    home: Path
    server: str
    squid: str


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real program."""
    return subprocess.run([PAYLOAD, *args], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The same command in this process (faster), still against the grid's services."""
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def grid_conditions(grid: Grid) -> GridConditions:
    status = grid.status()
    services = status.get("services", {})
    assert isinstance(services, dict)
    assert status.get("running"), status
    assert "conditions" in services, f"the grid at {grid.home} runs no conditions service: {services}"
    assert "squid-IHEP" in services, f"the grid at {grid.home} runs no IHEP Squid: {services}"
    return GridConditions(grid.home, services["conditions"], services["squid-IHEP"])


@pytest.fixture(scope="module")
def tag(grid_conditions: GridConditions) -> str:
    name = f"JUNO-PAYLOAD-{secrets.token_hex(4).upper()}"
    made = run("make-conditions", "--tag", name, "--runs", "3000-3999", "--home", str(grid_conditions.home))
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["created"] is True
    return name


@pytest.fixture(scope="module")
def elec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("payloads")
    sim, elec = directory / "sim.root", directory / "elec.root"
    detsim(check("detsim", ["--evtmax", "30", "--seed", "21", "--output", str(sim), "gun", "--particles", "e-",
                            "--momentums", "3", "--momentums-interp", "KineticEnergy"]))
    elecsim.run(check("elecsim", ["--input", str(sim), "--output", str(elec), "--seed", "22"]))
    return elec


def test_cal_reads_the_tag_through_the_squid_after_a_dead_proxy(grid_conditions: GridConditions, tag: str,
                                                                elec_file: Path) -> None:
    calib, rec = elec_file.with_name("calib.root"), elec_file.with_name("rec.root")
    urls = f"http://127.0.0.1:9,{grid_conditions.squid},{grid_conditions.server}"
    proc = run("cal", "--input", str(elec_file), "--output", str(calib), "--tag", tag, "--run", "3500",
               env={"JUNO_CONDITIONS_URLS": urls})
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["conditions_endpoint"] == grid_conditions.squid  # the dead proxy was passed over
    assert (summary["tag"], summary["run"], summary["events"]) == (tag, 3500, 30)
    code, _, stderr = invoke("rec", "--input", str(calib), "--output", str(rec))
    assert code == 0, stderr
    with uproot.open(rec) as root:
        energy = root["rec"]["rec_energy_mev"].array(library="np")
    assert abs(np.mean(energy) / 3.0 - 1) < 0.02


def test_cal_errors_from_the_service(grid_conditions: GridConditions, tag: str, elec_file: Path) -> None:
    out = str(elec_file.with_name("refused.root"))
    env = {"JUNO_CONDITIONS_URLS": f"{grid_conditions.squid},{grid_conditions.server}"}
    code, _, stderr = invoke("cal", "--input", str(elec_file), "--output", out, "--tag", tag, "--run", "4000",
                             env=env)
    assert code == 2  # conditions the tag does not have: bad input, not worth retrying
    assert f"global tag {tag!r} has no payload for run 4000" in stderr
    code, _, stderr = invoke("cal", "--input", str(elec_file), "--output", out, "--tag", "JUNO-NO-SUCH-TAG",
                             "--run", "3500", env=env)
    assert code == 2
    assert "unknown global tag 'JUNO-NO-SUCH-TAG'" in stderr
    code, _, stderr = invoke("cal", "--input", str(elec_file), "--output", out, "--tag", tag, "--run", "3500",
                             env={"JUNO_CONDITIONS_URLS": "http://127.0.0.1:9,http://127.0.0.1:7"})
    assert code == 3  # nothing answered: transient
    assert "no conditions endpoint answered" in stderr
    assert not Path(out).exists()


def test_make_conditions_is_safe_to_replay(grid_conditions: GridConditions, tag: str) -> None:
    code, stdout, stderr = invoke("make-conditions", "--tag", tag, "--runs", "3000-3999", "--home",
                                  str(grid_conditions.home))
    assert code == 0, stderr
    assert json.loads(stdout)["created"] is False
    code, _, stderr = invoke("make-conditions", "--tag", tag, "--runs", "3000-4999", "--home",
                             str(grid_conditions.home))
    assert code == 1
    assert "locked with other payloads or runs" in stderr
