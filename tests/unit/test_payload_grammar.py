"""The offline software's command grammar (payloads.grammar) and what each option does to the output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot

from juno_dcs.payloads import detsim, elecsim
from juno_dcs.payloads.errors import PayloadInputError
from juno_dcs.payloads.grammar import GrammarError, check, usage


def sim(tmp_path: Path, name: str, *argv: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.root"
    detsim.run(check("detsim", ["--output", str(out), *argv]))
    with uproot.open(out) as root:
        return {"meta": json.loads(str(root["meta"])), **root["sim"].arrays(library="np")}


def test_the_tutorial_command_lines_parse() -> None:
    parsed = check("detsim", ["--evtmax", "100", "--seed", "7", "--output", "a.root", "--user-output", "u.root",
                              "--no-gdml", "--detoption", "Balloon", "gun", "--particles", "e+", "e-",
                              "--momentums", "1.398", "2", "--position", "0", "0", "-1000",
                              "--momentums-interp", "KineticEnergy"])
    assert (parsed["evtmax"], parsed["seed"], parsed["no_gdml"], parsed["detoption"]) == (100, 7, True, "Balloon")
    assert parsed.generator == "gun"
    assert parsed.gen("particles") == ["e+", "e-"]
    assert parsed.gen("momentums") == [1.398, 2.0]
    assert parsed.gen("positions") == [0.0, 0.0, -1000.0]
    assert parsed.given == {"evtmax", "seed", "output", "user_output", "no_gdml", "detoption"}
    decay = check("detsim", ["gendecay", "--nuclear=Th-232", "--volume", "pAcrylic"])
    assert (decay["evtmax"], decay["seed"], decay["output"]) == (10, 42, "sample_detsim.root")  # the tutorial's
    assert (decay.gen("nuclear"), decay.gen("volume"), decay.gen("material")) == ("Th-232", "pAcrylic", "Acrylic")
    assert check("detsim", ["hepevt", "--exe", "IBD"]).gen("volume") == "pTarget"
    elec = check("elecsim", ["--input", "d.root", "--output", "e.root", "--rate", "10", "--evtmax", "5"])
    assert (elec["rate"], elec["evtmax"], elec["seed"], elec["user_output"]) == (10.0, 5, 42, None)
    assert check("cal", ["--input", "e.root"])["output"] == "sample_calib.root"
    assert check("rec", [])["input"] == "sample_calib.root"
    assert check("detsim", ["gun"]).meta()["generator"]["particles"] == ["gamma"]


@pytest.mark.parametrize(("step", "argv", "option", "message"), [
    ("detsim", ["--no-such-option", "3", "gun"], "--no-such-option", "--no-such-option: no such option"),
    ("detsim", ["gun", "--no-such-option", "3"], "--no-such-option", "gun --no-such-option: no such option"),
    ("detsim", ["gendecay", "--nuclear", "U-238", "--particles", "e-"], "--particles",
     "gendecay --particles: no such option"),
    ("detsim", ["gun", "stray"], "stray", "gun 'stray': unexpected word"),
    ("detsim", ["Gun"], "Gun", "'Gun': no such generator"),
    ("detsim", ["--evtmax", "1.5", "gun"], "--evtmax", "--evtmax '1.5': not an integer"),
    ("detsim", ["--evtmax", "gun"], "--evtmax", "--evtmax 'gun': not an integer"),
    ("detsim", ["--output", "x.txt", "gun"], "--output", "--output 'x.txt': a ROOT file's name ends with .root"),
    ("detsim", ["--output=", "gun"], "--output", "--output: an empty value"),
    ("detsim", ["gun", "--particles"], "--particles", "gun --particles: needs values"),
    ("detsim", ["gun", "--particles", "e-", "e+", "gamma", "--momentums", "1", "2"], "--momentums",
     "one for all particles or one per particle (3), got 2"),
    ("detsim", ["gun", "--momentums-mode", "Gaus"], "--momentums-extra-params", "needs --momentums-extra-params"),
    ("detsim", ["gun", "--momentums-mode", "Range", "--momentums", "5", "--momentums-extra-params", "1"],
     "--momentums-extra-params", "below --momentums"),
    ("detsim", ["gun", "--momentums-interp", "Energy"], "--momentums-interp", "unknown interpretation"),
    ("detsim", ["gun", "--positions", "0", "0", "0", "--volume", "pTarget"], "--volume", "either --positions"),
    ("detsim", ["gun", "--material", "LS"], "--material", "give the --volume it fills"),
    ("detsim", ["gendecay", "--nuclear", "U238"], "--nuclear", "'U238': unknown nuclide"),
    ("detsim", ["gendecay", "--nuclear", "u-238"], "--nuclear", "unknown nuclide"),
    ("detsim", ["gendecay", "--volume", "pWater"], "--volume", "'pWater': unknown volume (one of pTarget, pAcrylic)"),
    ("detsim", ["hepevt", "--exe", "AmC"], "--exe", "'AmC': unknown generator program"),
    ("elecsim", ["--rate", "-3"], "--rate", "--rate '-3': expected 1e-06 to 1e+08"),
    ("elecsim", ["--rate", "inf"], "--rate", "not a finite number"),
    ("elecsim", ["--evtmax", "0"], "--evtmax", "-1 (every event) or a positive number"),
    ("elecsim", ["--input", "a.root", "--output", "a.root"], "--output", "is the --input too"),
    ("elecsim", ["gun"], "gun", "'gun': unexpected word"),
    ("cal", ["--run", "x"], "--run", "--run 'x': not an integer"),
    ("cal", ["--tag"], "--tag", "--tag: needs a value"),
    ("rec", ["--seed", "1"], "--seed", "--seed: no such option (the options of rec: --evtmax, --input, --output)"),
    ("sim", [], "", "no such step 'sim'"),
])
def test_bad_command_lines_name_the_step_and_the_option(step: str, argv: list[str], option: str,
                                                        message: str) -> None:
    with pytest.raises(GrammarError) as info:
        check(step, argv)
    assert (info.value.step, info.value.option) == (step, option)
    assert message in str(info.value), str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, PayloadInputError)  # exit code 2


def test_usage_lists_every_option() -> None:
    text = usage("detsim")
    for name in ("--evtmax", "--user-output", "--no-gdml", "--particles", "--nuclear", "--exe", "--positions"):
        assert name in text


def test_the_decay_spectrum_follows_the_nuclide(tmp_path: Path) -> None:
    c14 = sim(tmp_path, "c14", "--evtmax", "150", "gendecay", "--nuclear", "C-14")
    k40 = sim(tmp_path, "k40", "--evtmax", "150", "gendecay", "--nuclear", "K-40")
    co60 = sim(tmp_path, "co60", "--evtmax", "60", "gendecay", "--nuclear", "Co-60")
    assert np.all(c14["energy_mev"] <= 0.156 + 1e-9)  # the beta endpoint
    assert np.all(c14["pdg"] == 1000060140)
    k_beta = k40["energy_mev"][k40["energy_mev"] != 1.461]
    assert np.all(k_beta <= 1.311 + 1e-9)
    assert 0.05 < np.mean(k40["energy_mev"] == 1.461) < 0.25  # electron capture with its gamma, ~11 %
    assert np.all(co60["energy_mev"] >= 2.505)  # two gammas and a beta
    assert np.mean(co60["edep_mev"]) > 4 * np.mean(c14["edep_mev"])
    assert np.mean(c14["nhit"]) < np.mean(k40["nhit"]) < np.mean(co60["nhit"])
    assert c14["meta"]["generator"] == {"name": "gendecay", "nuclear": "C-14", "volume": "pTarget",
                                        "material": "LS"}
    u238 = sim(tmp_path, "u", "--evtmax", "200", "gendecay", "--nuclear", "U-238")
    assert len(set(u238["pdg"])) > 5  # the chain's members
    acrylic = sim(tmp_path, "acr", "--evtmax", "60", "gendecay", "--nuclear", "C-14", "--volume", "pAcrylic")
    assert np.all(np.hypot(np.hypot(acrylic["x_mm"], acrylic["y_mm"]), acrylic["z_mm"]) >= 17_700)
    assert np.all(acrylic["edep_mev"] == 0)  # a beta in the acrylic leaves no light in the scintillator


def test_gun_options_change_the_events(tmp_path: Path) -> None:
    base = ["--evtmax", "20", "gun", "--particles", "e-"]
    momentum = sim(tmp_path, "p", *base, "--momentums", "3")
    kinetic = sim(tmp_path, "k", *base, "--momentums", "3", "--momentums-interp", "KineticEnergy")
    assert np.allclose(kinetic["energy_mev"], 3.0)
    assert np.allclose(momentum["energy_mev"], np.sqrt(9 + 0.511**2) - 0.511)
    spread = sim(tmp_path, "r", *base, "--momentums", "1", "--momentums-mode", "Range",
                 "--momentums-extra-params", "5", "--momentums-interp", "KineticEnergy")
    assert spread["energy_mev"].min() >= 1
    assert spread["energy_mev"].max() <= 5
    assert spread["energy_mev"].std() > 0.5
    placed = sim(tmp_path, "x", *base, "--positions", "1000", "-2000", "3000")
    assert np.all(placed["x_mm"] == 1000)
    assert np.all(placed["y_mm"] == -2000)
    pair = sim(tmp_path, "two", "--evtmax", "5", "gun", "--particles", "e+", "gamma", "--momentums", "1", "2",
               "--momentums-interp", "KineticEnergy")
    assert np.allclose(pair["energy_mev"], 3.0)
    assert np.all(pair["pdg"] == -11)
    balloon = sim(tmp_path, "b", "--detoption", "Balloon", *base, "--momentums", "3")
    assert np.mean(balloon["nhit"]) > np.mean(momentum["nhit"])  # the balloon lets more light through
    later = sim(tmp_path, "s", "--start-evtid", "100", *base, "--momentums", "3")
    assert list(later["event_id"][:2]) == [100, 101]


def test_ibd_and_muons(tmp_path: Path) -> None:
    ibd = sim(tmp_path, "ibd", "--evtmax", "40", "hepevt", "--exe", "IBD")
    assert np.all(ibd["pdg"] == -11)
    assert ibd["energy_mev"].min() > 0
    assert ibd["energy_mev"].max() < 8.3
    assert 1.5 < np.mean(ibd["energy_mev"]) < 4.5  # the reactor spectrum seen through IBD peaks near 4 MeV E_nu
    neutron = sim(tmp_path, "n", "--evtmax", "10", "hepevt", "--exe", "IBD-neutron")
    assert np.all(neutron["pdg"] == 2112)
    assert np.all(neutron["edep_mev"] <= 2.2231)
    muons = sim(tmp_path, "mu", "--evtmax", "4", "--muon-mb-per-event", "1", "hepevt", "--exe", "Muon")
    assert set(np.abs(muons["pdg"])) == {13}
    assert np.all(muons["track_length_mm"] > 0)
    assert muons["meta"]["muon_mb_per_event"] == 1


def test_outputs_record_the_options(tmp_path: Path) -> None:
    out, user = tmp_path / "d.root", tmp_path / "u.root"
    summary = detsim.run(check("detsim", ["--evtmax", "6", "--seed", "5", "--output", str(out), "--user-output",
                                          str(user), "--no-gdml", "gun", "--particles", "e+", "--momentums", "1.398"]))
    assert summary.extra["options"]["seed"] == 5
    assert summary.extra["generator"]["particles"] == ["e+"]
    assert summary.extra["user_output"] == str(user)
    with uproot.open(out) as root:
        meta = json.loads(str(root["meta"]))
        assert "geometry" not in {k.split(";")[0] for k in root.keys()}  # noqa: SIM118 (uproot's keys)
    assert meta["gdml"] is False
    assert meta["argv"][-4:] == ["--particles", "e+", "--momentums", "1.398"]
    with uproot.open(user) as root:
        evt = root["evt"].arrays(library="np")
        assert list(evt["event_id"]) == list(range(6))
        assert np.all(evt["nprimary"] == 1)
        assert np.all(np.concatenate(list(evt["primary_pdg"])) == -11)
    elec, elec_user = tmp_path / "e.root", tmp_path / "eu.root"
    fast = elecsim.run(check("elecsim", ["--input", str(out), "--output", str(elec), "--rate", "1000",
                                         "--user-output", str(elec_user), "--evtmax", "4"]))
    assert fast.events == 4
    slow = elecsim.run(check("elecsim", ["--input", str(out), "--output", str(tmp_path / "s.root"), "--rate", "1"]))
    with uproot.open(elec) as a, uproot.open(tmp_path / "s.root") as b, uproot.open(elec_user) as u:
        assert a["elec"]["time_ns"].array(library="np")[-1] < b["elec"]["time_ns"].array(library="np")[3] / 10
        meta = json.loads(str(a["meta"]))
        assert (meta["options"]["rate"], meta["simulation"]["options"]["seed"]) == (1000.0, 5)
        assert u["elecsum"].num_entries == 4
    assert slow.events == 6
