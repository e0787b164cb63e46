"""detsim's generators: each event's primary particles (kinetic energy, vertex), from the checked command line.

    gun       --particles with --momentums (Fix, Range or Gaus; read as momenta, kinetic or total energies) from
              --positions (one for all particles or one per particle) or uniform in a --volume
    gendecay  one decay of the --nuclear's chain (nuclides.py) uniform in the --volume: the beta's energy from an
              allowed spectrum up to its endpoint, the alpha's line, the gamma lines; the event's pdg is the ion's
    hepevt    --exe IBD: a reactor antineutrino's inverse beta decay uniform in the --volume, the positron
              (E_nu - 1.806 MeV kinetic) and the neutron (tens of keV); IBD-eplus, IBD-neutron: one of the two;
              Muon: a cosmic muon of the JUNO site (about 207 GeV on average) through the detector

The event's truth is its first primary's pdg (gendecay: the ion's) and the sum of the primaries' kinetic energies.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from juno_dcs.payloads import detector as det
from juno_dcs.payloads.grammar import Parsed
from juno_dcs.payloads.nuclides import Decay, decays

MASS_MEV: dict[str, float] = {"e-": 0.511, "e+": 0.511, "gamma": 0.0, "mu-": 105.658, "mu+": 105.658,
                              "neutron": 939.565, "proton": 938.272, "alpha": 3727.379}
PDG: dict[str, int] = {"e-": 11, "e+": -11, "gamma": 22, "mu-": 13, "mu+": -13, "neutron": 2112, "proton": 2212,
                       "alpha": 1000020040}
MUONS = frozenset({"mu-", "mu+"})
IBD_THRESHOLD_MEV = 1.806
DELTA_NP_MEV = 1.293  # neutron - proton mass
MUON_MEAN_GEV = 207.0  # the mean muon energy in the JUNO hall, under ~700 m of rock


@dataclass(frozen=True)
class Primary:
    particle: str
    kinetic_mev: float
    vertex: np.ndarray


@dataclass(frozen=True)
class Event:
    pdg: int
    primaries: tuple[Primary, ...]

    @property
    def energy_mev(self) -> float:
        return float(sum(p.kinetic_mev for p in self.primaries))

    @property
    def vertex(self) -> np.ndarray:
        return self.primaries[0].vertex if self.primaries else np.zeros(3)


class Generator(Protocol):
    @property
    def muons(self) -> bool:
        """Whether events hold a muon (their memory, their chunking)."""

    def event(self, rng: np.random.Generator) -> Event: ...


def isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    sin_t = np.sqrt(1 - cos_t**2)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)


def uniform_in(rng: np.random.Generator, volume: str) -> np.ndarray:
    """A point uniform in the volume (a sphere or a spherical shell of detector.VOLUMES)."""
    _, inner, outer = det.VOLUMES[volume]
    r = (inner**3 + rng.uniform() * (outer**3 - inner**3)) ** (1 / 3)
    return np.asarray(r * isotropic(rng, 1)[0])


def kinetic(particle: str, value: float, interp: str) -> float:
    mass = MASS_MEV[particle]
    if interp == "KineticEnergy":
        return value
    if interp == "TotalEnergy":
        return max(value - mass, 0.0)
    return math.sqrt(value * value + mass * mass) - mass


@dataclass(frozen=True)
class Gun:
    particles: tuple[str, ...]
    momenta: tuple[float, ...]
    mode: str
    extra: float
    interp: str
    positions: tuple[tuple[float, float, float], ...] | None
    volume: str | None

    @property
    def muons(self) -> bool:
        return bool(MUONS & set(self.particles))

    def _momentum(self, rng: np.random.Generator, value: float) -> float:
        if self.mode == "Range":
            return float(rng.uniform(value, self.extra))
        if self.mode == "Gaus":
            return max(float(rng.normal(value, self.extra)), 0.0)
        return value

    def event(self, rng: np.random.Generator) -> Event:
        shared = uniform_in(rng, self.volume) if self.volume else None
        out = []
        for k, particle in enumerate(self.particles):
            value = self._momentum(rng, self.momenta[k if len(self.momenta) > 1 else 0])
            if shared is not None:
                vertex = shared
            elif self.positions is None:
                vertex = np.zeros(3)
            else:
                vertex = np.array(self.positions[k if len(self.positions) > 1 else 0], dtype=np.float64)
            out.append(Primary(particle, kinetic(particle, value, self.interp), vertex))
        return Event(PDG[self.particles[0]], tuple(out))


@functools.cache
def _beta_table(endpoint: float, points: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The allowed beta spectrum p E (Q - T)^2 up to `endpoint` as (kinetic energies, cumulative distribution)."""
    t = np.linspace(0.0, endpoint, points)
    energy = t + MASS_MEV["e-"]
    shape = np.sqrt(energy**2 - MASS_MEV["e-"] ** 2) * energy * (endpoint - t) ** 2
    cdf = np.cumsum(shape)
    return t, cdf / cdf[-1]


def beta_energy(rng: np.random.Generator, endpoint: float) -> float:
    t, cdf = _beta_table(endpoint)
    return float(np.interp(rng.uniform(), cdf, t))


@dataclass(frozen=True)
class GenDecay:
    nuclide: str
    volume: str

    @property
    def muons(self) -> bool:
        return False

    def event(self, rng: np.random.Generator) -> Event:
        chain = decays(self.nuclide)
        weights = np.array([d.branching for d in chain])
        decay: Decay = chain[int(rng.choice(len(chain), p=weights / weights.sum()))]
        vertex = uniform_in(rng, self.volume)
        out = []
        if decay.kind == "beta-":
            out.append(Primary("e-", beta_energy(rng, decay.energy_mev), vertex))
        elif decay.kind == "alpha":
            out.append(Primary("alpha", decay.energy_mev, vertex))
        out += [Primary("gamma", g, vertex) for g in decay.gammas_mev]
        return Event(decay.pdg, tuple(out))


@functools.cache
def _ibd_table(points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Reactor antineutrino energies seen through inverse beta decay: flux x cross section, as a cumulative table."""
    e_nu = np.linspace(IBD_THRESHOLD_MEV, 10.0, points)
    e_pos = e_nu - DELTA_NP_MEV
    flux = np.exp(0.87 - 0.16 * e_nu - 0.091 * e_nu**2)  # a fit of the reactor spectrum's shape
    shape = flux * e_pos * np.sqrt(np.clip(e_pos**2 - MASS_MEV["e+"] ** 2, 0.0, None))
    cdf = np.cumsum(shape)
    return e_nu, cdf / cdf[-1]


@dataclass(frozen=True)
class HepEvt:
    exe: str
    volume: str

    @property
    def muons(self) -> bool:
        return self.exe == "Muon"

    def event(self, rng: np.random.Generator) -> Event:
        if self.exe == "Muon":
            energy = float(rng.exponential(MUON_MEAN_GEV - 1.0) + 1.0) * 1000.0
            particle = "mu-" if rng.uniform() < 1 / 2.3 else "mu+"  # mu+/mu- about 1.3 underground
            return Event(PDG[particle], (Primary(particle, energy, uniform_in(rng, "pTarget")),))
        e_nu, cdf = _ibd_table()
        energy = float(np.interp(rng.uniform(), cdf, e_nu))
        vertex = uniform_in(rng, self.volume)
        positron = Primary("e+", max(energy - IBD_THRESHOLD_MEV, 0.0), vertex)
        neutron = Primary("neutron", float(rng.uniform(0.005, 0.05)), vertex)
        chosen = {"IBD": (positron, neutron), "IBD-eplus": (positron,), "IBD-neutron": (neutron,)}[self.exe]
        return Event(PDG[chosen[0].particle], chosen)


def generator(parsed: Parsed) -> Generator:
    """The generator of a checked detsim command line."""
    name, g = parsed.generator, parsed.generator_options
    if name == "gun":
        points = g["positions"]
        positions = None if points is None else tuple(
            (points[k], points[k + 1], points[k + 2]) for k in range(0, len(points), 3))
        extra = g["momentums_extra_params"]
        return Gun(tuple(g["particles"]), tuple(g["momentums"]), g["momentums_mode"], extra[0] if extra else 0.0,
                   g["momentums_interp"], positions, g["volume"])
    if name == "gendecay":
        return GenDecay(g["nuclear"], g["volume"])
    if name == "hepevt":
        return HepEvt(g["exe"], g["volume"])
    raise ValueError(f"no generator {name!r}")  # check() lets no other name through
