"""elecsim: photoelectron hits -> what each fired PMT's electronics reads out (charge in ADC counts, time in ns).

Per event: dark-noise photoelectrons (DARK_RATE_HZ per PMT over the readout window) join the hits; each
photoelectron's time gets the PMT's transit time spread; hits outside the readout window are lost. A fired
PMT reads the sum of its photoelectrons' charges (its gain times 1 +- SPE_RESOLUTION each) and its first time,
shifted by its timing offset. Gains and offsets are the detector's true constants (detector.electronics()).
Events are seeded by (seed, event id). Each event's trigger time (branch `time_ns`, from the file's start) follows
the previous one's by an exponential gap at `--rate` Hz. `--evtmax N` digitises the first N events; `--user-output`
writes one summary row per readout (tree `elecsum`: event_id, time_ns, n_fired, total_adc). The output's meta
holds the options and the simulation's meta.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from juno_dcs.payloads import detector as det
from juno_dcs.payloads.errors import PayloadInputError
from juno_dcs.payloads.grammar import Parsed
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
SCHEMA = {**TRUTH_TYPES, "time_ns": "float64", "pmt": PMT_SCHEMA}
USER_SCHEMA = {"event_id": "int64", "time_ns": "float64", "n_fired": "int32", "total_adc": "float64"}
BRANCHES = [*TRUTH, "hit_pmt", "hit_time"]


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


def _digitise_chunk(chunk: Any, seed: int, rate_hz: float, clock: float) -> tuple[dict[str, Any], float]:
    """The elec columns of one chunk of sim events and the clock after its last event."""
    counts = counts_of(chunk["hit_pmt"])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    pmt_all, time_all = flat(chunk["hit_pmt"], np.int64), flat(chunk["hit_time"], np.float64)
    ids, charges, times, fired, stamps = [], [], [], [], []
    for i, event_id in enumerate(np.asarray(chunk["event_id"])):
        rng = np.random.default_rng([seed, STEP_SALT, int(event_id)])
        clock += float(rng.exponential(1e9 / rate_hz))
        sl = slice(offsets[i], offsets[i + 1])
        pmt, charge, time = digitise(rng, pmt_all[sl], time_all[sl])
        ids.append(pmt)
        charges.append(charge)
        times.append(time)
        fired.append(len(pmt))
        stamps.append(clock)
    n_fired = np.array(fired, dtype=np.int64)
    columns = {**truth_columns(chunk), "time_ns": np.array(stamps), "pmt": jagged(
        n_fired, id=np.concatenate(ids).astype(np.int32), charge=np.concatenate(charges).astype(np.float32),
        time=np.concatenate(times).astype(np.float32))}
    return columns, clock


def run(parsed: Parsed) -> Summary:
    """Digitise the events of a detsim file, as a checked elecsim command line (grammar.check) says."""
    input_path, output = Path(parsed["input"]), Path(parsed["output"])
    user_path = Path(parsed["user_output"]) if parsed["user_output"] else None
    check_output(output, input_path)
    if user_path is not None:
        check_output(user_path, input_path, output)
    with open_input(input_path, "sim", BRANCHES, needs="juno-payload detsim") as source:
        meta = {"step": "elecsim", **parsed.meta(), "input": str(input_path), "simulation": source.meta}
        fired_total, clock = 0, 0.0
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(OutputTree(output, "elec", SCHEMA, meta))
            user = stack.enter_context(OutputTree(user_path, "elecsum", USER_SCHEMA, meta)) if user_path else None
            for chunk in source.chunks(BRANCHES, evtmax=parsed["evtmax"]):
                columns, clock = _digitise_chunk(chunk, parsed["seed"], parsed["rate"], clock)
                n_fired = counts_of(columns["pmt"])
                fired_total += int(n_fired.sum())
                out.extend(columns)
                if user is not None:
                    adc = np.bincount(np.repeat(np.arange(len(n_fired)), n_fired),
                                      weights=flat(columns["pmt"]["charge"], np.float64), minlength=len(n_fired))
                    user.extend({"event_id": columns["event_id"], "time_ns": columns["time_ns"],
                                 "n_fired": n_fired.astype(np.int32), "total_adc": adc})
        extra: dict[str, Any] = {"fired_pmts": fired_total, "options": dict(parsed.options)}
        if user_path is not None:
            extra["user_output"] = str(user_path)
        return out.summary("elecsim", **extra)
