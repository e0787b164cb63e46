"""The JUNO payloads on small event counts: the chain detsim -> elecsim -> cal -> rec (cal reads a tag made by
make-conditions on SQLite through the real conditions service app and the real client), determinism, the tree
layout, bad inputs of many kinds, and a muon event's memory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
import uproot
from click.testing import CliRunner
from fastapi.testclient import TestClient

from juno_dcs.conditions import db, logic
from juno_dcs.conditions.client import ConditionsClient, OpenTagRefused
from juno_dcs.conditions.config import ServiceConfig
from juno_dcs.conditions.errors import Conflict
from juno_dcs.conditions.models import FolderInfo, RunRange
from juno_dcs.conditions.routes import create_app
from juno_dcs.payloads import cal, elecsim, rec
from juno_dcs.payloads import detector as det
from juno_dcs.payloads.cli import main
from juno_dcs.payloads.conditions import (
    DetectorConditions,
    client_from_env,
    load_conditions,
    make_conditions,
    writer_transaction,
)
from juno_dcs.payloads.detsim import run as detsim
from juno_dcs.payloads.errors import PayloadInputError
from juno_dcs.payloads.grammar import Parsed, check

BIN = Path(sys.executable).parent
TAG = "JUNO-TOY-TEST"


class AppSession(requests.Session):
    """A requests session that answers from the conditions app in process (FastAPI's TestClient)."""

    def __init__(self, app: TestClient) -> None:
        super().__init__()
        self.app = app

    def get(self, url: str | bytes, **_: Any) -> requests.Response:  # type: ignore[override]
        answer = self.app.get(urlsplit(str(url)).path)
        reply = requests.Response()
        reply.status_code = answer.status_code
        reply._content = answer.content
        reply.headers.update(answer.headers)
        reply.url = str(url)
        return reply


@dataclass
class Conditions:
    url: str
    client: ConditionsClient


@pytest.fixture(scope="module")
def conditions_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conditions]:
    url = f"sqlite:///{tmp_path_factory.mktemp('conditions') / 'c.db'}"
    with writer_transaction(url) as conn:
        db.create_schema(conn)
        make_conditions(conn, TAG, RunRange(first=100, last=199))
    engine = db.make_engine(url)
    app = TestClient(create_app(ServiceConfig(database_url=url), engine))
    client = ConditionsClient(servers=["http://conditions"], session=AppSession(app))
    yield Conditions(url, client)
    client.close()
    app.close()
    engine.dispose()


@dataclass
class Chain:
    sim: Path
    elec: Path
    calib: Path
    rec: Path
    summaries: list[dict[str, Any]]


def gun(particle: str, kinetic_mev: float, position: str, events: int, seed: int, output: Path,
        muon_mb: float = 500) -> Parsed:
    """detsim of one particle of this kinetic energy at `position` (center, uniform or x,y,z)."""
    where = {"center": [], "uniform": ["--volume", "pTarget"]}.get(position)
    if where is None:
        where = ["--positions", *position.split(",")]
    return check("detsim", ["--evtmax", str(events), "--seed", str(seed), "--output", str(output),
                            "--muon-mb-per-event", str(muon_mb), "gun", "--particles", particle,
                            "--momentums", str(kinetic_mev), "--momentums-interp", "KineticEnergy", *where])


def io(step: str, source: Path, output: Path, *more: str) -> Parsed:
    return check(step, ["--input", str(source), "--output", str(output), *more])


def run_chain(directory: Path, conditions: DetectorConditions, particle: str = "e-", energy: float = 3.0,
              position: str = "center", events: int = 40, seed: int = 11) -> Chain:
    files = [directory / f"{name}.root" for name in ("sim", "elec", "calib", "rec")]
    summaries = [detsim(gun(particle, energy, position, events, seed, files[0], 20))]
    summaries.append(elecsim.run(io("elecsim", files[0], files[1], "--seed", str(seed + 1))))
    summaries.append(cal.run(io("cal", files[1], files[2]), conditions))
    summaries.append(rec.run(io("rec", files[2], files[3])))
    return Chain(*files, summaries=[json.loads(s.to_json()) for s in summaries])


@pytest.fixture(scope="module")
def detector_conditions(conditions_db: Conditions) -> DetectorConditions:
    return load_conditions(conditions_db.client, TAG, 150)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, detector_conditions: DetectorConditions) -> Chain:
    return run_chain(tmp_path_factory.mktemp("chain"), detector_conditions)


def arrays(path: Path, tree: str) -> dict[str, Any]:
    with uproot.open(path) as root:
        return root[tree].arrays(library="np")  # type: ignore[no-any-return]


# --- the chain
def test_chain_reconstructs_the_energy_and_vertex_of_electrons(chain: Chain) -> None:
    result = arrays(chain.rec, "rec")
    ratio = result["rec_energy_mev"] / result["energy_mev"]
    assert len(ratio) == 40
    assert abs(ratio.mean() - 1) < 0.01, ratio.mean()
    assert ratio.std() < 0.04, ratio.std()  # ~1.6 % at 3 MeV
    distance = np.hypot(np.hypot(result["rec_x_mm"] - result["x_mm"], result["rec_y_mm"] - result["y_mm"]),
                        result["rec_z_mm"] - result["z_mm"])
    assert np.median(distance) < 500, distance


@pytest.mark.parametrize(("particle", "energy", "position"), [("e-", 1.0, "uniform"), ("e+", 2.0, "8000,0,-6000")])
def test_chain_off_centre_and_positrons(tmp_path: Path, detector_conditions: DetectorConditions, particle: str,
                                        energy: float, position: str) -> None:
    result = arrays(run_chain(tmp_path, detector_conditions, particle, energy, position, events=30).rec, "rec")
    visible = energy + (1.022 if particle == "e+" else 0.0)
    assert abs(np.median(result["rec_energy_mev"]) / visible - 1) < 0.05
    assert np.median(np.abs(result["rec_r_mm"] - np.sqrt(result["x_mm"]**2 + result["y_mm"]**2
                                                            + result["z_mm"]**2))) < 1000


def test_tree_layout_and_summaries(chain: Chain) -> None:
    with uproot.open(chain.sim) as root:
        assert root["sim"].keys() == ["event_id", "pdg", "energy_mev", "x_mm", "y_mm", "z_mm", "edep_mev",
                                      "track_length_mm", "pe_fraction", "nhit", "hit_pmt", "hit_time"]
        meta = json.loads(str(root["meta"]))
        assert meta["detector"] == det.DETECTOR_VERSION
        assert meta["generator"] == {"name": "gun", "particles": ["e-"], "momentums": [3.0], "momentums_mode": "Fix",
                                     "momentums_extra_params": None, "momentums_interp": "KineticEnergy",
                                     "positions": None, "volume": None, "material": None}
        assert (meta["options"]["evtmax"], meta["options"]["seed"], meta["gdml"]) == (40, 11, True)
        assert "geometry" in {k.split(";")[0] for k in root.keys()}  # noqa: SIM118 (uproot's keys)
        hits = root["sim"].arrays(["nhit", "hit_pmt", "hit_time"])
        assert 3000 < np.mean(hits["nhit"]) < 6000  # 1600 pe/MeV
    with uproot.open(chain.elec) as root:
        assert root["elec"].keys()[-4:] == ["npmt", "pmt_id", "pmt_charge", "pmt_time"]
    with uproot.open(chain.calib) as root:
        assert "total_pe" in root["calib"]
        meta = json.loads(str(root["meta"]))
        assert meta["conditions"]["tag"] == TAG
        assert meta["conditions"]["pe_per_mev"] == det.LIGHT_YIELD
        calib = root["calib"].arrays(["pmt_time"], library="np")
        times = np.concatenate(list(calib["pmt_time"]))
        assert 80 < np.median(times) < 110  # offsets (~40 ns) removed: ~ 19.5 m / 195 mm/ns + decay
    with uproot.open(chain.rec) as root:
        assert {"rec_energy_mev", "rec_x_mm", "rec_y_mm", "rec_z_mm", "rec_r_mm", "n_fired"} <= set(
            root["rec"].keys())
    for step, summary in zip(("detsim", "elecsim", "cal", "rec"), chain.summaries, strict=True):
        assert summary["step"] == step
        assert summary["events"] == 40
        assert summary["bytes"] == Path(summary["output"]).stat().st_size


def test_cal_removes_the_gains(chain: Chain) -> None:
    elec = arrays(chain.elec, "elec")
    calib = arrays(chain.calib, "calib")
    gains = det.electronics().gain_adc_per_pe
    np.testing.assert_allclose(calib["pmt_charge"][0], elec["pmt_charge"][0] / gains[elec["pmt_id"][0]], rtol=1e-5)


# --- determinism
def test_detsim_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    def sim(name: str, seed: int, events: int) -> dict[str, Any]:
        detsim(gun("gamma", 2.0, "uniform", events, seed, tmp_path / name))
        return arrays(tmp_path / name, "sim")

    a, b, c, longer = sim("a.root", 5, 6), sim("b.root", 5, 6), sim("c.root", 6, 6), sim("d.root", 5, 9)
    for key in ("x_mm", "edep_mev", "nhit"):
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key], longer[key][:6])  # event i does not depend on the event count
    assert all(np.array_equal(x, y) for x, y in zip(a["hit_time"], b["hit_time"], strict=True))
    assert not np.array_equal(a["x_mm"], c["x_mm"])
    assert (tmp_path / "a.root").read_bytes() != b""


def test_elecsim_is_deterministic_for_a_seed(chain: Chain, tmp_path: Path) -> None:
    elecsim.run(io("elecsim", chain.sim, tmp_path / "again.root", "--seed", "12"))  # the chain used seed 11 + 1
    elecsim.run(io("elecsim", chain.sim, tmp_path / "other.root", "--seed", "13"))
    first, again, other = (arrays(p, "elec") for p in (chain.elec, tmp_path / "again.root", tmp_path / "other.root"))
    assert all(np.array_equal(x, y) for x, y in zip(first["pmt_charge"], again["pmt_charge"], strict=True))
    assert not np.array_equal(first["pmt_charge"][0], other["pmt_charge"][0])


@pytest.mark.parametrize(("particle", "energy"), [("e+", 2.0), ("gamma", 1.0), ("neutron", 5.0), ("mu-", 2e5)])
def test_every_particle(tmp_path: Path, particle: str, energy: float) -> None:
    detsim(gun(particle, energy, "0,0,1000", 3, 1, tmp_path / "s.root", 1))
    sim = arrays(tmp_path / "s.root", "sim")
    if particle == "e+":
        assert np.allclose(sim["edep_mev"], 3.022, atol=0.05)
    if particle == "neutron":
        assert np.all(sim["edep_mev"] <= 2.2231)  # the capture gamma, whatever the kinetic energy
    if particle == "mu-":
        assert np.all(sim["track_length_mm"] > 10_000)
        assert np.all(sim["pe_fraction"] < 1)
        assert np.all(sim["nhit"] <= 1.01 * det.MAX_PE_PER_EVENT)
        assert np.all(sim["pdg"] == 13)
    else:
        assert np.all(sim["track_length_mm"] == 0)


# --- conditions
def test_make_conditions_replays_and_refuses_other_runs(conditions_db: Conditions) -> None:
    with writer_transaction(conditions_db.url) as conn:
        again = make_conditions(conn, TAG, RunRange(first=100, last=199))
    assert not again.created
    with pytest.raises(Conflict, match="locked with other payloads or runs"), \
            writer_transaction(conditions_db.url) as conn:
        make_conditions(conn, TAG, RunRange(first=100, last=299))


def test_conditions_that_do_not_match_the_detector_are_refused(conditions_db: Conditions) -> None:
    with writer_transaction(conditions_db.url) as conn:
        for tag, state in (("SMALL", "locked"), ("OPEN", "open")):
            logic.create_tag(conn, tag)
            gains = {"channel": [0, 1, 2], "gain": [100.0, 101.0, 99.0], "sigma": [30.0, 30.0, 30.0]}
            logic.add_payload(conn, tag, FolderInfo(name="pmt_gains", payload_type="pmt_gains"),
                              RunRange(first=0, last=10), json.dumps(gains).encode())
            for folder in ("timing_offsets", "energy_scale"):
                ref = make_payload(folder)
                logic.add_payload(conn, tag, FolderInfo(name=folder, payload_type=folder), RunRange(first=0, last=10),
                                  ref)
            if state == "locked":
                logic.lock_tag(conn, tag)
    with pytest.raises(PayloadInputError, match="pmt_gains has 3 channels, the detector model"):
        load_conditions(conditions_db.client, "SMALL", 5)
    with pytest.raises(OpenTagRefused):
        load_conditions(conditions_db.client, "OPEN", 5)


def make_payload(folder: str) -> bytes:
    from juno_dcs.payloads.conditions import condition_payloads

    return condition_payloads()[folder]


def test_client_from_env() -> None:
    client = client_from_env({"JUNO_CONDITIONS_URLS": "http://squid:1, http://squid:2,http://server:3"})
    assert client.endpoints == ["http://squid:1", "http://squid:2", "http://server:3"]
    client.close()
    with pytest.raises(PayloadInputError, match="JUNO_CONDITIONS_URLS is not set"):
        client_from_env({})
    with pytest.raises(PayloadInputError, match="not an http"):
        client_from_env({"JUNO_CONDITIONS_URLS": "squid:1"})


# --- bad inputs through the CLI
def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


DETSIM = ["detsim", "--evtmax", "2", "--seed", "1"]
GUN = ["gun", "--particles", "e-", "--momentums", "3"]


@pytest.mark.parametrize(("args", "message"), [
    (["--evtmax", "0", *GUN], "--evtmax '0': expected 1 to 10000000"),
    (["--seed", "-4", *GUN], "--seed '-4': expected at least 0"),
    (["--seed", "1", "--seed", "2", *GUN], "--seed: given twice"),
    (["--seed", *GUN], "--seed 'gun': not an integer"),
    (["--seed"], "--seed: needs a value"),
    (["--detoption", "Steel", *GUN], "--detoption 'Steel': unknown detector option (one of Acrylic, Balloon)"),
    (["--no-gdml=yes", *GUN], "--no-gdml: a flag takes no value"),
    ([*GUN, "--seed", "3"], "--seed: an option of detsim, not of the generator gun: give it before `gun`"),
    (["--muon-mb-per-event", "-5", *GUN], "--muon-mb-per-event '-5': expected 0 to 65536"),
    (["gun", "--particles", "pi0"], "gun --particles 'pi0': unknown particle (one of e-, e+, gamma"),
    (["gun", "--momentums", "-1"], "gun --momentums '-1': expected 1e-06 to"),
    (["gun", "--momentums", "nan"], "gun --momentums 'nan': not a finite number"),
    (["gun", "--momentums", "three"], "gun --momentums 'three': not a number"),
    (["gun", "--positions", "1", "2"], "gun --positions: x y z in mm, a multiple of three numbers (got 2)"),
    (["gun", "--positions", "0", "0", "18000"], "gun --positions 0 0 18000: outside the central detector"),
    (["gun", "--particle", "e-"], "gun --particle: no such option (the options of gun: --particles"),
    (["--particle", "e-", *GUN], "--particle: no such option (the options of detsim: --evtmax"),
    (["--energy-mev", "3", *GUN], "--energy-mev: no such option"),
    (["gendecay", "--nuclear", "Xx-99"], "gendecay --nuclear 'Xx-99': unknown nuclide (one of U-238, Th-232"),
    (["gendecay", "--material", "Water"], "gendecay --material 'Water': unknown material"),
    (["gendecay", "--nuclear"], "gendecay --nuclear: needs a value"),
    (["gendecay", "--volume", "pTarget", "--material", "Acrylic"],
     "gendecay --material Acrylic: volume pTarget holds LS"),
    (["hepevt"], "hepevt --exe: required (one of IBD, IBD-eplus, IBD-neutron, Muon)"),
    (["hepevt", "--exe", "Muon", "--volume", "pTarget"], "hepevt --exe Muon: muons come from the rock"),
    (["beam"], "'beam': no such generator (generators: gun, gendecay, hepevt)"),
    ([], "a generator is needed after the options: gun, gendecay, hepevt"),
])
def test_detsim_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    exit_code, stdout, stderr = invoke("detsim", "--output", str(tmp_path / "s.root"), *args)
    assert exit_code == 2, stderr
    assert stderr.startswith(f"juno-payload detsim: error: {message}"), stderr
    assert len(stderr.strip().splitlines()) == 1
    assert stdout == ""
    assert not list(tmp_path.iterdir())  # nothing written


def test_payload_help_lists_the_options() -> None:
    code, stdout, _ = invoke("detsim", "--help")
    assert code == 0
    assert "--nuclear" in stdout
    assert "--momentums-interp" in stdout


def test_detsim_bad_outputs(tmp_path: Path) -> None:
    code, _, stderr = invoke(*DETSIM, "--output", str(tmp_path / "missing" / "s.root"), *GUN)
    assert code == 2
    assert f"directory {tmp_path / 'missing'} does not exist" in stderr
    code, _, stderr = invoke(*DETSIM, "--output", str(tmp_path / "s.txt"), *GUN)
    assert code == 2
    assert "--output 's.txt': a ROOT file's name ends with .root" in stderr.replace(str(tmp_path) + "/", "")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    files = {"text": root / "text.root", "empty": root / "empty.root", "nometa": root / "nometa.root",
             "nobranch": root / "nobranch.root", "otherdet": root / "otherdet.root", "dir": root / "dir.root",
             "rntuple": root / "rntuple.root"}
    files["text"].write_text("not a ROOT file\n" * 40)
    files["empty"].write_bytes(b"")
    files["dir"].mkdir()
    def trees(path: Path, meta: dict[str, str] | None, *names: str) -> None:
        with uproot.recreate(path) as f:
            if meta is not None:
                f["meta"] = json.dumps(meta)
            for name in names:
                f.mktree(name, {"event_id": "int64"}).extend({"event_id": np.arange(3)})

    trees(files["nometa"], None, "sim", "elec")
    trees(files["nobranch"], {"detector": det.DETECTOR_VERSION}, "sim", "elec", "calib")
    trees(files["otherdet"], {"detector": "juno-full/9"}, "sim")
    with uproot.recreate(files["rntuple"]) as f:
        f["meta"] = json.dumps({"detector": det.DETECTOR_VERSION})
        f["calib"] = {"event_id": np.arange(3)}  # uproot's default for a dict: an RNTuple
    return files


@pytest.mark.parametrize(("step", "name", "message"), [
    ("elecsim", "missing", "no such file"),
    ("elecsim", "text", "not a readable ROOT file"),
    ("rec", "empty", "not a readable ROOT file"),
    ("elecsim", "nobranch", "tree 'sim' lacks branch(es) pdg"),
    ("rec", "nobranch", "tree 'calib' lacks branch(es) pdg"),
    ("elecsim", "nometa", "no 'meta' object (not written by juno-payload)"),
    ("rec", "otherdet", "no TTree 'calib' (trees: sim); this step reads the output of juno-payload cal"),
    ("rec", "rntuple", "'calib' is a ROOT::RNTuple, not a TTree"),
])
def test_steps_refuse_bad_input_files(bad_files: dict[str, Path], tmp_path: Path, step: str, name: str,
                                      message: str) -> None:
    path = bad_files.get(name, tmp_path / "missing.root")
    seed = ["--seed", "1"] if step == "elecsim" else []  # the other steps have no --seed
    code, stdout, stderr = invoke(step, "--input", str(path), "--output", str(tmp_path / "o.root"), *seed)
    assert code == 2, stderr
    assert message in stderr
    assert stderr.startswith(f"juno-payload {step}: error: input {path}")
    assert stdout == ""
    assert not (tmp_path / "o.root").exists()


def test_wrong_tree_and_wrong_detector(chain: Chain, bad_files: dict[str, Path], tmp_path: Path) -> None:
    code, _, stderr = invoke("rec", "--input", str(chain.elec), "--output", str(tmp_path / "o.root"))
    assert code == 2
    assert "no TTree 'calib' (trees: elec)" in stderr
    code, _, stderr = invoke("elecsim", "--input", str(bad_files["otherdet"]), "--output", str(tmp_path / "o.root"),
                             "--seed", "1")
    assert code == 2
    assert "made for detector model 'juno-full/9'" in stderr
    code, _, stderr = invoke("elecsim", "--input", str(bad_files["dir"]), "--output", str(tmp_path / "o.root"),
                             "--seed", "1")
    assert code == 2  # a directory where a file belongs
    code, _, stderr = invoke("elecsim", "--input", str(chain.sim), "--output", str(chain.sim), "--seed", "1")
    assert code == 2
    assert "is the --input too" in stderr


def test_cal_bad_arguments(chain: Chain, tmp_path: Path) -> None:
    out = str(tmp_path / "c.root")
    code, _, stderr = invoke("cal", "--input", str(chain.elec), "--output", out, "--tag", TAG, "--run", "5", env={
        "JUNO_CONDITIONS_URLS": ""})
    assert code == 2
    assert "JUNO_CONDITIONS_URLS is not set" in stderr
    code, _, stderr = invoke("cal", "--input", str(chain.elec), "--output", out, "--tag", TAG, "--run", "-5")
    assert code == 2
    assert "--run '-5': expected 0 to 999999" in stderr
    code, _, stderr = invoke("cal", "--input", str(chain.sim), "--output", out, "--tag", TAG, "--run", "5")
    assert code == 2
    assert "no TTree 'elec' (trees: sim)" in stderr
    code, _, stderr = invoke("cal", "--input", str(chain.elec), "--output", out, "--run", "5",
                             env={"JUNO_GLOBAL_TAG": ""})
    assert code == 2
    assert "--tag: no global tag: give --tag or set JUNO_GLOBAL_TAG" in stderr
    code, _, stderr = invoke("cal", "--input", str(chain.elec), "--output", out, "--tag", "bad tag!", "--run", "5",
                             env={"JUNO_CONDITIONS_URLS": "http://127.0.0.1:9"})
    assert code == 2
    assert "global tag 'bad tag!'" in stderr


def test_make_conditions_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUNO_CONDITIONS_DB_URL", raising=False)
    code, _, stderr = invoke("make-conditions", "--tag", "T1", "--runs", "9-3", "--db", "sqlite://")
    assert code == 2
    assert "run range '9-3'" in stderr
    code, _, stderr = invoke("make-conditions", "--tag", "1bad", "--runs", "1-3", "--db", "sqlite://")
    assert code == 2
    assert "global tag '1bad'" in stderr
    code, _, stderr = invoke("make-conditions", "--tag", "T1", "--runs", "1-3", "--home", str(tmp_path))
    assert code == 2
    assert "no conditions database" in stderr
    code, _, stderr = invoke("make-conditions", "--tag", "T1", "--runs", "1-3", "--db", "sqlite://")
    assert code == 3  # a database error: SQLite says "no such table" as an OperationalError, like a lost server
    assert "no such table" in stderr


def test_make_conditions_cli(conditions_db: Conditions) -> None:
    code, stdout, stderr = invoke("make-conditions", "--tag", "JUNO-CLI", "--runs", "7", "--db", conditions_db.url)
    assert code == 0, stderr
    made = json.loads(stdout)
    assert (made["tag"], made["runs"], made["state"], made["created"]) == ("JUNO-CLI", "7-7", "locked", True)
    assert load_conditions(conditions_db.client, "JUNO-CLI", 7).pe_per_mev == det.LIGHT_YIELD


# --- the real program
def test_console_script_prints_one_json_line(tmp_path: Path) -> None:
    out = tmp_path / "s.root"
    proc = subprocess.run([str(BIN / "juno-payload"), *DETSIM, "--output", str(out), *GUN], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert (summary["step"], summary["events"], summary["output"]) == ("detsim", 2, str(out))
    assert summary["bytes"] == out.stat().st_size


MEASURE = """import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def max_rss_mb(*args: str) -> float:
    """The payload's max RSS: a fresh Python runs it and reads getrusage(RUSAGE_CHILDREN) (its only child)."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(BIN / "juno-payload"), *args], capture_output=True,
                          text=True, timeout=120, check=True)
    code, kb = proc.stdout.split()
    assert code == "0", proc.stderr
    return int(kb) / 1024


def test_muon_events_hold_their_memory(tmp_path: Path) -> None:
    base = ["detsim", "--seed", "3", "--muon-mb-per-event", "300", "--evtmax", "3"]
    gun = ["gun", "--momentums", "5000", "--particles"]
    electron = max_rss_mb(*base, "--output", str(tmp_path / "e.root"), *gun, "e-")
    muon = max_rss_mb(*base, "--output", str(tmp_path / "m.root"), *gun, "mu-")
    assert muon - electron > 0.9 * 300, (electron, muon)
    assert muon - electron < 2 * 300, (electron, muon)  # one event's buffer at a time, not all three
    own = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # this process's children so far
    assert own >= muon * 0.99
