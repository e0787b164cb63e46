"""detsim: a generator's primary particles in the toy central detector -> photoelectron hits (pmt id, time).

The command line is the offline software's (grammar.py): common options, then a generator (generators.py).
Energy deposits by particle:
    e-        one point deposit of its kinetic energy at the vertex
    e+        the same plus two 0.511 MeV annihilation gammas
    gamma     Compton-like: two to four deposits a few tens of cm from the vertex (energy outside the
              scintillator escapes)
    neutron   thermalised within ~0.3 m, then captured on hydrogen: a 2.223 MeV gamma (the toy keeps the capture
              in the event's readout window)
    alpha, proton  one point deposit, quenched (ALPHA_QUENCH, PROTON_QUENCH of the kinetic energy is seen)
    mu-, mu+  a straight track through the vertex (downward, cos^2 zenith), MUON_DEDX_MEV_PER_MM along its chord
              through the scintillator (at most its energy), in 40 segments; each event holds a buffer of
              `--muon-mb-per-event` MB, written through, for as long as the event is processed (real muon
              events need that much memory for their optical photons)

Deposits outside the scintillator (a decay in the acrylic) give no light. Each deposit gives Poisson(LIGHT_YIELD *
E * collection * vessel transmission (--detoption)) photoelectrons, spread over the PMTs by the light weights; a
hit's time is the deposit time + distance / group velocity + a scintillation decay time. Events are seeded by
(seed, event id), ids from --start-evtid: the same seed gives the same events, whatever the chunking.
The output's meta holds every option and the generator's; the geometry is stored (TObjString `geometry`) unless
--no-gdml; --user-output writes the primaries' truth (tree `evt`).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from juno_dcs.payloads import detector as det
from juno_dcs.payloads import generators as gen
from juno_dcs.payloads.grammar import Parsed
from juno_dcs.payloads.rootio import CHUNK, OutputTree, Summary, check_output, jagged

MUON_SEGMENTS = 40
H_CAPTURE_MEV = 2.223
ALPHA_QUENCH = 0.1
PROTON_QUENCH = 0.3
STEP_SALT = 1  # detsim's part of the per-event seed
SCHEMA = {"event_id": "int64", "pdg": "int32", "energy_mev": "float64", "x_mm": "float64", "y_mm": "float64",
          "z_mm": "float64", "edep_mev": "float64", "track_length_mm": "float64", "pe_fraction": "float64",
          "hit": "var * {pmt: int32, time: float32}"}
USER_SCHEMA = {"event_id": "int64", "pdg": "int32", "energy_mev": "float64", "x_mm": "float64", "y_mm": "float64",
               "z_mm": "float64", "edep_mev": "float64", "npe": "int64",
               "primary": "var * {pdg: int32, kinetic_mev: float64, x_mm: float64, y_mm: float64, z_mm: float64}"}


@dataclass(frozen=True)
class SimEvent:
    vertex: np.ndarray
    edep_mev: float
    track_length_mm: float
    pe_fraction: float
    hit_pmt: np.ndarray
    hit_time: np.ndarray


def _gamma(rng: np.random.Generator, vertex: np.ndarray, energy: float) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(2, 5))
    steps = rng.exponential(250.0, n)[:, None] * gen.isotropic(rng, n)
    points = vertex + np.cumsum(steps, axis=0)
    energies = energy * rng.dirichlet(np.ones(n))
    return points, energies


def _muon(rng: np.random.Generator, energy: float,
          vertex: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    cos_zenith = rng.uniform() ** (1 / 3)
    phi = rng.uniform(0, 2 * np.pi)
    sin_z = math.sqrt(1 - cos_zenith**2)
    direction = np.array([sin_z * math.cos(phi), sin_z * math.sin(phi), -cos_zenith])
    b = float(vertex @ direction)
    root = math.sqrt(max(b * b - float(vertex @ vertex) + det.LS_RADIUS_MM**2, 0.0))
    s_in, s_out = -b - root, -b + root
    length = s_out - s_in
    s = s_in + (np.arange(MUON_SEGMENTS) + 0.5) * length / MUON_SEGMENTS
    edep = min(energy, det.MUON_DEDX_MEV_PER_MM * length)
    points = vertex + s[:, None] * direction
    return points, np.full(MUON_SEGMENTS, edep / MUON_SEGMENTS), (s - s_in) / det.LIGHT_SPEED_MM_PER_NS, length


def _deposits(rng: np.random.Generator,
              primaries: tuple[gen.Primary, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(K, 3) points, (K,) energies, (K,) times of the deposits inside the scintillator and the muons' track length."""
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    length = 0.0
    for p in primaries:
        vertex, energy = p.vertex, p.kinetic_mev
        if p.particle in gen.MUONS:
            points, energies, times, chord = _muon(rng, energy, vertex)
            pieces.append((points, energies, times))
            length += chord
            continue
        here: list[tuple[np.ndarray, np.ndarray]] = []
        if p.particle in ("e-", "e+"):
            here.append((vertex[None, :], np.array([energy])))
            if p.particle == "e+":
                here.extend(_gamma(rng, vertex, 0.511) for _ in range(2))
        elif p.particle == "gamma":
            here.append(_gamma(rng, vertex, energy))
        elif p.particle in ("alpha", "proton"):
            quench = ALPHA_QUENCH if p.particle == "alpha" else PROTON_QUENCH
            here.append((vertex[None, :], np.array([energy * quench])))
        else:  # neutron: thermalised, captured on hydrogen
            capture = vertex + rng.normal(0.0, 180.0, 3)
            here.append(_gamma(rng, capture, H_CAPTURE_MEV))
        pieces += [(pts, e, np.zeros(len(e))) for pts, e in here]
    if not pieces:
        return np.zeros((0, 3)), np.zeros(0), np.zeros(0), 0.0
    points = np.concatenate([p for p, _, _ in pieces])
    energies = np.concatenate([e for _, e, _ in pieces])
    times = np.concatenate([t for _, _, t in pieces])
    keep = det.inside(points)
    return points[keep], energies[keep], times[keep], length


def _decay_times(rng: np.random.Generator, n: int) -> np.ndarray:
    taus = np.array([t for t, _ in det.SCINTILLATION])
    weights = np.array([w for _, w in det.SCINTILLATION])
    component = rng.choice(len(taus), size=n, p=weights / weights.sum())
    return np.asarray(rng.exponential(taus[component]))


def simulate_event(rng: np.random.Generator, event: gen.Event, transmission: float = 1.0) -> SimEvent:
    """The hits of one generated event; `transmission` is the vessel's (detector.VESSELS)."""
    points, energies, times, length = _deposits(rng, event.primaries)
    pmt_parts: list[np.ndarray] = []
    time_parts: list[np.ndarray] = []
    fraction = 1.0
    if len(points):
        frac, prob, distance = det.collection(points)
        mean_pe = det.LIGHT_YIELD * energies * frac * transmission
        if mean_pe.sum() > det.MAX_PE_PER_EVENT:  # thinned: each photoelectron kept with this probability
            fraction = det.MAX_PE_PER_EVENT / float(mean_pe.sum())
        n_pe = rng.poisson(mean_pe * fraction)
        for k in np.flatnonzero(n_pe):
            counts = rng.multinomial(int(n_pe[k]), prob[k])
            pmts = np.repeat(np.arange(det.N_PMT), counts)
            pmt_parts.append(pmts)
            time_parts.append(times[k] + distance[k, pmts] / det.GROUP_VELOCITY_MM_PER_NS)
    hit_pmt = np.concatenate(pmt_parts) if pmt_parts else np.zeros(0, dtype=np.int64)
    hit_time = np.concatenate(time_parts) if time_parts else np.zeros(0)
    hit_time = hit_time + _decay_times(rng, len(hit_time))
    order = np.lexsort((hit_time, hit_pmt))
    return SimEvent(event.vertex, float(energies.sum()), length, fraction, hit_pmt[order].astype(np.int32),
                    hit_time[order].astype(np.float32))


def _muon_buffer(megabytes: float, event_id: int) -> np.ndarray:
    """The muon event's working memory, written through so that every page is resident."""
    buffer = np.empty(int(megabytes * 1024 * 1024), dtype=np.uint8)
    buffer.fill(event_id % 251 + 1)
    return buffer


def _one(rng: np.random.Generator, generator: gen.Generator, event_id: int, muon_mb: float,
         transmission: float) -> tuple[gen.Event, SimEvent]:
    event = generator.event(rng)
    if not (generator.muons and muon_mb > 0):
        return event, simulate_event(rng, event, transmission)
    buffer = _muon_buffer(muon_mb, event_id)
    simulated = simulate_event(rng, event, transmission)
    buffer[::4096] += 1  # still this event's: touched again at its end
    del buffer
    return event, simulated


def geometry() -> str:
    """The detector description stored in the output unless --no-gdml (the toy's stand-in for the GDML)."""
    return json.dumps({"detector": det.DETECTOR_VERSION, "ls_radius_mm": det.LS_RADIUS_MM,
                       "pmt_radius_mm": det.PMT_RADIUS_MM, "n_pmt": det.N_PMT, "volumes": det.VOLUMES,
                       "attenuation_mm": det.ATTENUATION_MM}, sort_keys=True)


def _truth(ids: np.ndarray, generated: list[gen.Event], simulated: list[SimEvent]) -> dict[str, Any]:
    vertices = np.array([e.vertex for e in simulated]).reshape(len(ids), 3)
    return {"event_id": ids, "pdg": np.array([e.pdg for e in generated], dtype=np.int32),
            "energy_mev": np.array([e.energy_mev for e in generated]), "x_mm": vertices[:, 0],
            "y_mm": vertices[:, 1], "z_mm": vertices[:, 2], "edep_mev": np.array([e.edep_mev for e in simulated])}


def _user_columns(truth: dict[str, Any], generated: list[gen.Event], counts: np.ndarray) -> dict[str, Any]:
    primaries = [p for e in generated for p in e.primaries]
    where = np.array([p.vertex for p in primaries]).reshape(len(primaries), 3)
    return {**truth, "npe": counts, "primary": jagged(
        np.array([len(e.primaries) for e in generated], dtype=np.int64),
        pdg=np.array([gen.PDG[p.particle] for p in primaries], dtype=np.int32),
        kinetic_mev=np.array([p.kinetic_mev for p in primaries], dtype=np.float64),
        x_mm=where[:, 0], y_mm=where[:, 1], z_mm=where[:, 2])}


def run(parsed: Parsed) -> Summary:
    """Simulate the events of a checked detsim command line (grammar.check) into its --output."""
    output = Path(parsed["output"])
    user_path = Path(parsed["user_output"]) if parsed["user_output"] else None
    check_output(output)
    if user_path is not None:
        check_output(user_path, output)
    generator = gen.generator(parsed)
    seed, first_id, events = parsed["seed"], parsed["start_evtid"], parsed["evtmax"]
    muon_mb, transmission = parsed["muon_mb_per_event"], det.VESSELS[parsed["detoption"]]
    meta = {"step": "detsim", **parsed.meta(), "gdml": not parsed["no_gdml"],
            "muon_mb_per_event": muon_mb if generator.muons else 0}
    objects = {} if parsed["no_gdml"] else {"geometry": geometry()}
    total_hits = 0
    chunk = 10 if generator.muons else CHUNK  # a muon event holds up to MAX_PE_PER_EVENT hits
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(OutputTree(output, "sim", SCHEMA, meta, objects))
        user = stack.enter_context(OutputTree(user_path, "evt", USER_SCHEMA, meta)) if user_path else None
        for start in range(first_id, first_id + events, chunk):
            ids = np.arange(start, min(start + chunk, first_id + events), dtype=np.int64)
            pairs = [_one(np.random.default_rng([seed, STEP_SALT, int(i)]), generator, int(i), muon_mb, transmission)
                     for i in ids]
            generated, simulated = [g for g, _ in pairs], [s for _, s in pairs]
            counts = np.array([len(e.hit_pmt) for e in simulated], dtype=np.int64)
            total_hits += int(counts.sum())
            truth = _truth(ids, generated, simulated)
            out.extend({**truth, "track_length_mm": np.array([e.track_length_mm for e in simulated]),
                        "pe_fraction": np.array([e.pe_fraction for e in simulated]),
                        "hit": jagged(counts, pmt=np.concatenate([e.hit_pmt for e in simulated]),
                                      time=np.concatenate([e.hit_time for e in simulated]))})
            if user is not None:
                user.extend(_user_columns(truth, generated, counts))
    extra: dict[str, Any] = {"hits": total_hits, "generator": parsed.meta()["generator"]}
    if user_path is not None:
        extra["user_output"] = str(user_path)
    return out.summary("detsim", **extra, options=dict(parsed.options))
