"""detsim: particles in the toy central detector -> photoelectron hits (pmt id, time) per event.

Energy deposits by particle:
    e-        one point deposit of its kinetic energy at the vertex
    e+        the same plus two 0.511 MeV annihilation gammas
    gamma     Compton-like: two to four deposits a few tens of cm from the vertex (energy outside the
              scintillator escapes)
    neutron   thermalised within ~0.3 m, then captured on hydrogen: a 2.223 MeV gamma
    mu-, mu+  a straight track through the vertex (downward, cos^2 zenith), MUON_DEDX_MEV_PER_MM along its chord
              through the scintillator (at most its energy), in 40 segments; each event holds a buffer of
              `muon_mb_per_event` MB, written through, for as long as the event is processed (real muon
              events need that much memory for their optical photons)

Each deposit gives Poisson(LIGHT_YIELD * E * collection) photoelectrons, spread over the PMTs by the light
weights; a hit's time is the deposit time + distance / group velocity + a scintillation decay time.
Events are seeded by (seed, event id): the same seed gives the same file, whatever the chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from juno_dcs.payloads import detector as det
from juno_dcs.payloads.errors import PayloadInputError
from juno_dcs.payloads.rootio import CHUNK, OutputTree, Summary, check_output, jagged

PARTICLES: dict[str, int] = {"e-": 11, "e+": -11, "gamma": 22, "mu-": 13, "mu+": -13, "neutron": 2112}
MUONS = frozenset({"mu-", "mu+"})
MAX_ENERGY_MEV = 1e7
MAX_EVENTS = 10_000_000
MUON_SEGMENTS = 40
H_CAPTURE_MEV = 2.223
STEP_SALT = 1  # detsim's part of the per-event seed
SCHEMA = {"event_id": "int64", "pdg": "int32", "energy_mev": "float64", "x_mm": "float64", "y_mm": "float64",
          "z_mm": "float64", "edep_mev": "float64", "track_length_mm": "float64", "pe_fraction": "float64",
          "hit": "var * {pmt: int32, time: float32}"}


@dataclass(frozen=True)
class Position:
    kind: Literal["center", "point", "uniform"]
    point: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def parse(cls, text: str) -> Position:
        """'center', 'uniform' or 'x,y,z' in mm inside the scintillator sphere."""
        value = text.strip().lower()
        if value in ("center", "centre"):
            return cls("center")
        if value == "uniform":
            return cls("uniform")
        parts = value.split(",")
        try:
            x, y, z = (float(p) for p in parts)
        except ValueError as exc:
            raise PayloadInputError(f"--position {text!r}: expected center, uniform or x,y,z in mm") from exc
        if not all(math.isfinite(c) for c in (x, y, z)):
            raise PayloadInputError(f"--position {text!r}: coordinates must be finite numbers")
        if math.sqrt(x * x + y * y + z * z) > det.LS_RADIUS_MM:
            raise PayloadInputError(f"--position {text!r}: outside the central detector "
                                    f"(radius {det.LS_RADIUS_MM:.0f} mm)")
        return cls("point", (x, y, z))

    def __str__(self) -> str:
        return ",".join(f"{c:g}" for c in self.point) if self.kind == "point" else self.kind


@dataclass(frozen=True)
class DetsimConfig:
    particle: str
    energy_mev: float
    position: Position
    events: int
    seed: int
    output: Path
    muon_mb_per_event: float = 500.0

    def __post_init__(self) -> None:
        if self.particle not in PARTICLES:
            raise PayloadInputError(f"--particle {self.particle!r}: expected one of {', '.join(PARTICLES)}")
        if not (math.isfinite(self.energy_mev) and 0 < self.energy_mev <= MAX_ENERGY_MEV):
            raise PayloadInputError(f"--energy-mev {self.energy_mev}: expected 0 < E <= {MAX_ENERGY_MEV:g}")
        if not 1 <= self.events <= MAX_EVENTS:
            raise PayloadInputError(f"--events {self.events}: expected 1 to {MAX_EVENTS}")
        if self.seed < 0:
            raise PayloadInputError(f"--seed {self.seed}: expected a non-negative integer")
        if not (math.isfinite(self.muon_mb_per_event) and 0 <= self.muon_mb_per_event <= 64 * 1024):
            raise PayloadInputError(f"--muon-mb-per-event {self.muon_mb_per_event}: expected 0 to 65536")


@dataclass(frozen=True)
class SimEvent:
    vertex: np.ndarray
    edep_mev: float
    track_length_mm: float
    pe_fraction: float
    hit_pmt: np.ndarray
    hit_time: np.ndarray


def _isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    sin_t = np.sqrt(1 - cos_t**2)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)


def _uniform_vertex(rng: np.random.Generator) -> np.ndarray:
    r = det.LS_RADIUS_MM * rng.uniform() ** (1 / 3)
    return np.asarray(r * _isotropic(rng, 1)[0])


def _gamma(rng: np.random.Generator, vertex: np.ndarray, energy: float) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(2, 5))
    steps = rng.exponential(250.0, n)[:, None] * _isotropic(rng, n)
    points = vertex + np.cumsum(steps, axis=0)
    energies = energy * rng.dirichlet(np.ones(n))
    return points, energies


def _deposits(rng: np.random.Generator, particle: str, energy: float,
              vertex: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(K, 3) points, (K,) energies, (K,) times of the deposits and the muon's track length."""
    if particle in MUONS:
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
        return (points, np.full(MUON_SEGMENTS, edep / MUON_SEGMENTS), (s - s_in) / det.LIGHT_SPEED_MM_PER_NS,
                length)
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    if particle == "e-":
        pieces.append((vertex[None, :], np.array([energy])))
    elif particle == "e+":
        pieces.append((vertex[None, :], np.array([energy])))
        pieces.extend(_gamma(rng, vertex, 0.511) for _ in range(2))
    elif particle == "gamma":
        pieces.append(_gamma(rng, vertex, energy))
    else:  # neutron: thermalised, captured on hydrogen
        capture = vertex + rng.normal(0.0, 180.0, 3)
        pieces.append(_gamma(rng, capture, H_CAPTURE_MEV))
    points = np.concatenate([p for p, _ in pieces])
    energies = np.concatenate([e for _, e in pieces])
    keep = det.inside(points)
    return points[keep], energies[keep], np.zeros(int(keep.sum())), 0.0


def _decay_times(rng: np.random.Generator, n: int) -> np.ndarray:
    taus = np.array([t for t, _ in det.SCINTILLATION])
    weights = np.array([w for _, w in det.SCINTILLATION])
    component = rng.choice(len(taus), size=n, p=weights / weights.sum())
    return np.asarray(rng.exponential(taus[component]))


def simulate_event(rng: np.random.Generator, particle: str, energy_mev: float, vertex: np.ndarray) -> SimEvent:
    points, energies, times, length = _deposits(rng, particle, energy_mev, vertex)
    pmt_parts: list[np.ndarray] = []
    time_parts: list[np.ndarray] = []
    fraction = 1.0
    if len(points):
        frac, prob, distance = det.collection(points)
        mean_pe = det.LIGHT_YIELD * energies * frac
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
    return SimEvent(vertex, float(energies.sum()), length, fraction, hit_pmt[order].astype(np.int32),
                    hit_time[order].astype(np.float32))


def _vertex(rng: np.random.Generator, position: Position) -> np.ndarray:
    if position.kind == "uniform":
        return _uniform_vertex(rng)
    return np.array(position.point, dtype=np.float64)


def _muon_buffer(megabytes: float, event_id: int) -> np.ndarray:
    """The muon event's working memory, written through so that every page is resident."""
    buffer = np.empty(int(megabytes * 1024 * 1024), dtype=np.uint8)
    buffer.fill(event_id % 251 + 1)
    return buffer


def run(config: DetsimConfig) -> Summary:
    """Simulate `config.events` events into `config.output`; the summary of what was written."""
    check_output(config.output)
    pdg = PARTICLES[config.particle]
    meta = {"step": "detsim", "particle": config.particle, "energy_mev": config.energy_mev,
            "position": str(config.position), "events": config.events, "seed": config.seed,
            "muon_mb_per_event": config.muon_mb_per_event if config.particle in MUONS else 0}
    total_hits = 0
    chunk = 10 if config.particle in MUONS else CHUNK  # a muon event holds up to MAX_PE_PER_EVENT hits
    with OutputTree(config.output, "sim", SCHEMA, meta) as out:
        for first in range(0, config.events, chunk):
            ids = np.arange(first, min(first + chunk, config.events), dtype=np.int64)
            events: list[SimEvent] = []
            for event_id in ids:
                rng = np.random.default_rng([config.seed, STEP_SALT, int(event_id)])
                vertex = _vertex(rng, config.position)
                if config.particle in MUONS and config.muon_mb_per_event > 0:
                    buffer = _muon_buffer(config.muon_mb_per_event, int(event_id))
                    events.append(simulate_event(rng, config.particle, config.energy_mev, vertex))
                    buffer[::4096] += 1  # still this event's: touched again at its end
                    del buffer
                else:
                    events.append(simulate_event(rng, config.particle, config.energy_mev, vertex))
            counts = np.array([len(e.hit_pmt) for e in events], dtype=np.int64)
            total_hits += int(counts.sum())
            vertices = np.array([e.vertex for e in events])
            out.extend({
                "event_id": ids, "pdg": np.full(len(ids), pdg, dtype=np.int32),
                "energy_mev": np.full(len(ids), config.energy_mev), "x_mm": vertices[:, 0],
                "y_mm": vertices[:, 1], "z_mm": vertices[:, 2],
                "edep_mev": np.array([e.edep_mev for e in events]),
                "track_length_mm": np.array([e.track_length_mm for e in events]),
                "pe_fraction": np.array([e.pe_fraction for e in events]),
                "hit": jagged(counts, pmt=np.concatenate([e.hit_pmt for e in events]),
                              time=np.concatenate([e.hit_time for e in events])),
            })
    return out.summary("detsim", hits=total_hits, particle=config.particle)
