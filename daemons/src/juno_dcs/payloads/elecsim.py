"""elecsim: photoelectron hits -> what each fired PMT's electronics reads out (charge in ADC counts, time in ns).

Per event: dark-noise photoelectrons (DARK_RATE_HZ per PMT over the readout window) join the hits; each
photoelectron's time gets the PMT's transit time spread; hits outside the readout window are lost. A fired
PMT reads the sum of its photoelectrons' charges (its gain times 1 +- SPE_RESOLUTION each) and its first time,
shifted by its timing offset. Gains and offsets are the detector's true constants (detector.electronics()).
Events are seeded by (seed, event id).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from juno_dcs.payloads import detector as det
from juno_dcs.payloads.errors import PayloadInputError
from juno_dcs.payloads.rootio import (
    TRUTH,
    TRUTH_TYPES,
    OutputTree,
    Summary,
    check_output,
    counts_of,
    flat,
    jagged,
    open_input,
    truth_columns,
)

STEP_SALT = 2
PMT_SCHEMA = "var * {id: int32, charge: float32, time: float32}"
SCHEMA = {**TRUTH_TYPES, "pmt": PMT_SCHEMA}


def digitise(rng: np.random.Generator, hit_pmt: np.ndarray,
             hit_time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One event's hits -> (pmt ids, charges in ADC counts, times in ns) of the fired PMTs, ids ascending."""
    elec = det.electronics()
    start, end = det.WINDOW_NS
    n_dark = int(rng.poisson(det.expected_dark_pe()))
    pmts = np.concatenate([hit_pmt.astype(np.int64), rng.integers(0, det.N_PMT, n_dark)])
    times = np.concatenate([hit_time.astype(np.float64), rng.uniform(start, end, n_dark)])
    times = times + rng.normal(0.0, det.TTS_SIGMA_NS, len(times))
    keep = (times >= start) & (times < end)
    pmts, times = pmts[keep], times[keep]
    if len(pmts) and (pmts.min() < 0 or pmts.max() >= det.N_PMT):
        raise PayloadInputError(f"hit on PMT {int(pmts.max())}: the detector has PMTs 0-{det.N_PMT - 1}")
    npe = np.bincount(pmts, minlength=det.N_PMT)
    fired = np.flatnonzero(npe)
    first = np.full(det.N_PMT, np.inf)
    np.minimum.at(first, pmts, times)
    n = npe[fired].astype(np.float64)
    gain = elec.gain_adc_per_pe[fired]
    charge = np.clip(gain * n + elec.spe_sigma_adc[fired] * np.sqrt(n) * rng.normal(size=len(fired)), 0.0, None)
    return fired, charge, first[fired] + elec.offset_ns[fired]


def run(input_path: Path, output: Path, seed: int) -> Summary:
    """Digitise every event of a detsim file into `output`."""
    if seed < 0:
        raise PayloadInputError(f"--seed {seed}: expected a non-negative integer")
    check_output(output, input_path)
    with open_input(input_path, "sim", [*TRUTH, "hit_pmt", "hit_time"], needs="juno-payload detsim") as source:
        meta = {"step": "elecsim", "seed": seed, "input": str(input_path), "simulation": source.meta}
        fired_total = 0
        with OutputTree(output, "elec", SCHEMA, meta) as out:
            for chunk in source.chunks([*TRUTH, "hit_pmt", "hit_time"]):
                counts = counts_of(chunk["hit_pmt"])
                offsets = np.concatenate([[0], np.cumsum(counts)])
                pmt_all, time_all = flat(chunk["hit_pmt"], np.int64), flat(chunk["hit_time"], np.float64)
                ids, charges, times, fired = [], [], [], []
                for i, event_id in enumerate(np.asarray(chunk["event_id"])):
                    rng = np.random.default_rng([seed, STEP_SALT, int(event_id)])
                    sl = slice(offsets[i], offsets[i + 1])
                    pmt, charge, time = digitise(rng, pmt_all[sl], time_all[sl])
                    ids.append(pmt)
                    charges.append(charge)
                    times.append(time)
                    fired.append(len(pmt))
                n_fired = np.array(fired, dtype=np.int64)
                fired_total += int(n_fired.sum())
                out.extend({**truth_columns(chunk), "pmt": jagged(
                    n_fired, id=np.concatenate(ids).astype(np.int32), charge=np.concatenate(charges).astype(np.float32),
                    time=np.concatenate(times).astype(np.float32))})
        return out.summary("elecsim", fired_pmts=fired_total)
