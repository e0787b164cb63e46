"""cal: ADC counts and raw times -> photoelectrons and times with the channels' offsets removed, using the condition
data of the run (pmt_gains, timing_offsets, energy_scale of a locked global tag). The energy scale travels on
in the output's meta for rec, with the options of this step (`options`) and of elecsim (`electronics`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from juno_dcs.payloads import detector as det
from juno_dcs.payloads.conditions import DetectorConditions
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

SCHEMA = {**TRUTH_TYPES, "total_pe": "float64", "pmt": "var * {id: int32, charge: float32, time: float32}"}
BRANCHES = [*TRUTH, "pmt_id", "pmt_charge", "pmt_time"]


def calibrate(conditions: DetectorConditions, pmt: np.ndarray, charge_adc: np.ndarray,
              time_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat arrays of readouts -> (charges in photoelectrons, times in ns)."""
    if len(pmt) and (pmt.min() < 0 or pmt.max() >= det.N_PMT):
        raise PayloadInputError(f"readout of PMT {int(pmt.max())}: the conditions have channels 0-{det.N_PMT - 1}")
    return charge_adc / conditions.gain[pmt], time_ns - conditions.offset_ns[pmt]


def electronics_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """elecsim's own meta (its options) without the simulation's, which travels separately."""
    return {k: v for k, v in meta.items() if k not in ("simulation", "detector")}


def run(parsed: Parsed, conditions: DetectorConditions) -> Summary:
    """Calibrate the events of an elecsim file with `conditions` (see conditions.load_conditions)."""
    input_path, output = Path(parsed["input"]), Path(parsed["output"])
    check_output(output, input_path)
    with open_input(input_path, "elec", BRANCHES, needs="juno-payload elecsim") as source:
        meta = {"step": "cal", **parsed.meta(), "input": str(input_path), "conditions": conditions.meta(),
                "electronics": electronics_meta(source.meta), "simulation": source.meta.get("simulation", {})}
        with OutputTree(output, "calib", SCHEMA, meta) as out:
            for chunk in source.chunks(BRANCHES, evtmax=parsed["evtmax"]):
                counts = counts_of(chunk["pmt_id"])
                charge, time = calibrate(conditions, flat(chunk["pmt_id"], np.int64),
                                         flat(chunk["pmt_charge"], np.float64), flat(chunk["pmt_time"], np.float64))
                total = np.bincount(np.repeat(np.arange(len(counts)), counts), weights=charge, minlength=len(counts))
                out.extend({**truth_columns(chunk), "total_pe": total,
                            "pmt": jagged(counts, id=flat(chunk["pmt_id"], np.int32), charge=charge.astype(np.float32),
                                          time=time.astype(np.float32))})
        return out.summary("cal", tag=conditions.tag, run=conditions.run, options=dict(parsed.options))
