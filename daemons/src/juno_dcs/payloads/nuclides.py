"""The radioactive decays `detsim gendecay --nuclear N` knows: a small table of each nuclide's decays.

A nuclide heads a chain in secular equilibrium: every member decays as often as the head, so one simulated event
is the decay of one member chosen with equal weight (with the member's branching ratio). A decay is a beta (its
endpoint Q in MeV, an allowed spectrum), an alpha (its kinetic energy in MeV, quenched in the scintillator) or an
electron capture (no charged particle), each followed by its gamma lines (MeV). The energies are rounded values of
the evaluated nuclear data; the toy does not follow the chains' rarer branches or their time correlations.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decay:
    """One member's decay: `kind` beta-, alpha or ec; `energy_mev` the beta endpoint or the alpha's energy."""

    member: str
    pdg: int  # the ion's code 100ZZZAAA0, as Geant4 names the decaying nucleus
    kind: str
    energy_mev: float
    gammas_mev: tuple[float, ...] = ()
    branching: float = 1.0


def _ion(z: int, a: int) -> int:
    return 1_000_000_000 + z * 10_000 + a * 10


def _b(member: str, z: int, a: int, q: float, *gammas: float, br: float = 1.0) -> Decay:
    return Decay(member, _ion(z, a), "beta-", q, gammas, br)


def _a(member: str, z: int, a: int, energy: float, *gammas: float, br: float = 1.0) -> Decay:
    return Decay(member, _ion(z, a), "alpha", energy, gammas, br)


U238_CHAIN = (
    _a("U-238", 92, 238, 4.198), _b("Th-234", 90, 234, 0.273), _b("Pa-234m", 91, 234, 2.269),
    _a("U-234", 92, 234, 4.775), _a("Th-230", 90, 230, 4.687), _a("Ra-226", 88, 226, 4.784),
    _a("Rn-222", 86, 222, 5.490), _a("Po-218", 84, 218, 6.002), _b("Pb-214", 82, 214, 1.019, 0.352),
    _b("Bi-214", 83, 214, 3.270, 0.609), _a("Po-214", 84, 214, 7.687), _b("Pb-210", 82, 210, 0.0635),
    _b("Bi-210", 83, 210, 1.162), _a("Po-210", 84, 210, 5.304),
)
TH232_CHAIN = (
    _a("Th-232", 90, 232, 4.012), _b("Ra-228", 88, 228, 0.046), _b("Ac-228", 89, 228, 2.127, 0.911),
    _a("Th-228", 90, 228, 5.423), _a("Ra-224", 88, 224, 5.685), _a("Rn-220", 86, 220, 6.288),
    _a("Po-216", 84, 216, 6.778), _b("Pb-212", 82, 212, 0.570, 0.239),
    _b("Bi-212", 83, 212, 2.252, br=0.64), _a("Bi-212", 83, 212, 6.051, br=0.36),
    _a("Po-212", 84, 212, 8.785, br=0.64), _b("Tl-208", 81, 208, 1.803, 2.614, 0.583, br=0.36),
)

NUCLIDES: dict[str, tuple[Decay, ...]] = {
    "U-238": U238_CHAIN,
    "Th-232": TH232_CHAIN,
    "K-40": (_b("K-40", 19, 40, 1.311, br=0.893), Decay("K-40", _ion(19, 40), "ec", 0.0, (1.461,), 0.107)),
    "Co-60": (_b("Co-60", 27, 60, 0.318, 1.173, 1.333),),
    "C-14": (_b("C-14", 6, 14, 0.156),),
    "Pb-210": (_b("Pb-210", 82, 210, 0.0635), _b("Bi-210", 83, 210, 1.162), _a("Po-210", 84, 210, 5.304)),
    "Po-210": (_a("Po-210", 84, 210, 5.304),),
    "Kr-85": (_b("Kr-85", 36, 85, 0.687),),
    "Bi-210": (_b("Bi-210", 83, 210, 1.162),),
    "Cs-137": (_b("Cs-137", 55, 137, 0.514, 0.662),),
    "Rn-222": U238_CHAIN[6:],
    "Ar-39": (_b("Ar-39", 18, 39, 0.565),),
}


def decays(nuclide: str) -> tuple[Decay, ...]:
    """The decays of `nuclide`'s chain (KeyError for a nuclide the table does not have)."""
    return NUCLIDES[nuclide]
