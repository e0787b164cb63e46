"""The toy JUNO central detector that every payload step shares.

A liquid-scintillator sphere of radius 17.7 m seen by N_PMT PMTs on a sphere of radius 19.5 m (a Fibonacci
lattice, so the layout is fixed without a file). Light from an energy deposit reaches PMT i with a weight
cos(incidence) / distance^2 * exp(-distance / attenuation); without attenuation the weights of any point inside
sum to the same total (Gauss), so the attenuation alone makes the light yield depend on the position:
`collection(r)` is the total relative to the centre, where the yield is LIGHT_YIELD photoelectrons per MeV.

The per-channel constants that the electronics really have (gains, timing offsets) come from DETECTOR_SEED:
elecsim applies them, `make-conditions` writes them into a global tag, cal removes them with what it reads
from the conditions service. Channel c is PMT c.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DETECTOR_VERSION = "juno-toy-cd/1"
LS_RADIUS_MM = 17_700.0
PMT_RADIUS_MM = 19_500.0
N_PMT = 2400
LIGHT_YIELD = 1600.0  # photoelectrons per MeV deposited at the centre
ATTENUATION_MM = 20_000.0
GROUP_VELOCITY_MM_PER_NS = 299.792458 / 1.54
LIGHT_SPEED_MM_PER_NS = 299.792458
SCINTILLATION = ((4.6, 0.71), (18.0, 0.22), (156.0, 0.07))  # (decay time ns, fraction)
DARK_RATE_HZ = 20_000.0
WINDOW_NS = (-200.0, 1000.0)  # readout window around the event time
TTS_SIGMA_NS = 1.5  # PMT transit time spread (elecsim's jitter)
SPE_RESOLUTION = 0.3  # single photoelectron charge resolution (relative)
MUON_DEDX_MEV_PER_MM = 0.2
MAX_PE_PER_EVENT = 100_000  # above this mean an event's photoelectrons are thinned at random (muons)
DETECTOR_SEED = 20_260_101
GAIN_ADC_PER_PE = 100.0  # nominal gain; each channel's is spread by GAIN_SPREAD
GAIN_SPREAD = 0.08
OFFSET_MEAN_NS = 40.0  # cable and electronics delays
OFFSET_SPREAD_NS = 5.0
ACRYLIC_THICKNESS_MM = 120.0
# detsim --detoption: the vessel that holds the scintillator; its light transmission relative to the acrylic
# sphere (the conditions' energy scale is the acrylic one)
VESSELS = {"Acrylic": 1.0, "Balloon": 1.03}
# Volumes a generator may place vertices in (the offline software's physical volume names): material, radii in mm
VOLUMES: dict[str, tuple[str, float, float]] = {
    "pTarget": ("LS", 0.0, LS_RADIUS_MM),
    "pAcrylic": ("Acrylic", LS_RADIUS_MM, LS_RADIUS_MM + ACRYLIC_THICKNESS_MM),
}

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@functools.cache
def pmt_positions() -> FloatArray:
    """(N_PMT, 3) PMT positions in mm on a Fibonacci lattice."""
    i = np.arange(N_PMT, dtype=np.float64) + 0.5
    cos_theta = 1.0 - 2.0 * i / N_PMT
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    phi = np.pi * (1.0 + 5.0**0.5) * i
    unit = np.stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta], axis=1)
    positions: FloatArray = PMT_RADIUS_MM * unit
    positions.setflags(write=False)
    return positions


def dark_window_ns() -> float:
    return WINDOW_NS[1] - WINDOW_NS[0]


def expected_dark_pe() -> float:
    """Mean number of dark-noise photoelectrons per event over all PMTs."""
    return N_PMT * DARK_RATE_HZ * dark_window_ns() * 1e-9


def light_weights(points: FloatArray) -> tuple[FloatArray, FloatArray]:
    """For (K, 3) points: the (K, N_PMT) distances in mm and the (K, N_PMT) light weights."""
    pmts = pmt_positions()
    delta = pmts[None, :, :] - points[:, None, :]
    distance = np.linalg.norm(delta, axis=2)
    cos_incidence = np.einsum("knj,nj->kn", delta, pmts) / (distance * PMT_RADIUS_MM)
    weights = np.clip(cos_incidence, 0.0, None) / distance**2 * np.exp(-distance / ATTENUATION_MM)
    return distance, weights


@functools.cache
def _centre_total() -> float:
    _, weights = light_weights(np.zeros((1, 3)))
    return float(weights.sum())


def collection(points: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(K,) collected light relative to the centre, (K, N_PMT) probabilities per PMT, (K, N_PMT) distances."""
    distance, weights = light_weights(points)
    total = weights.sum(axis=1)
    return total / _centre_total(), weights / total[:, None], distance


@dataclass(frozen=True)
class RadialTables:
    """Along a radius: the relative light collection and the (dark-free) charge centroid's radius."""

    radius: FloatArray
    collection: FloatArray
    centroid: FloatArray


@functools.cache
def radial_tables(steps: int = 80) -> RadialTables:
    radius = np.linspace(0.0, LS_RADIUS_MM, steps)
    pmts = pmt_positions()
    collected = np.empty(steps)
    centroid = np.empty(steps)
    direction = np.array([0.48, 0.6, 0.64])  # averages the lattice over a generic direction
    direction /= np.linalg.norm(direction)
    for k, r in enumerate(radius):
        frac, prob, _ = collection((r * direction)[None, :])
        collected[k] = frac[0]
        centroid[k] = float(prob[0] @ pmts @ direction)
    return RadialTables(radius, collected, centroid)


@dataclass(frozen=True)
class Electronics:
    """The true per-channel constants of the electronics."""

    gain_adc_per_pe: FloatArray
    spe_sigma_adc: FloatArray
    offset_ns: FloatArray


@functools.cache
def electronics() -> Electronics:
    rng = np.random.default_rng(DETECTOR_SEED)
    gain = GAIN_ADC_PER_PE * np.clip(rng.normal(1.0, GAIN_SPREAD, N_PMT), 0.6, 1.4)
    offset = rng.normal(OFFSET_MEAN_NS, OFFSET_SPREAD_NS, N_PMT)
    return Electronics(np.round(gain, 3), np.round(SPE_RESOLUTION * gain, 3), np.round(offset, 3))


def inside(points: FloatArray) -> npt.NDArray[np.bool_]:
    return np.asarray(np.linalg.norm(points, axis=-1) <= LS_RADIUS_MM)
