"""rec: calibrated PMT charges -> each event's energy and vertex.

Vertex: the charge-weighted centroid of the fired PMTs' positions, dark noise removed (its expected charge is
spread evenly over the PMTs, whose positions sum to about zero, so it only enlarges the denominator), then
moved out along its direction by the detector model's radial table (the centroid of a vertex at radius r lies
at a smaller radius). Energy: (charge - expected dark charge) / (pe_per_mev * collection(r_rec)), with the
energy scale that cal read from the conditions and wrote into its output's meta; a non-empty nonlinearity
[c0, c1, ...] divides that visible energy by c0 + c1 E + c2 E^2 + ...
"""

from __future__ import annotations

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
    open_input,
    truth_columns,
)

SCHEMA = {**TRUTH_TYPES, "rec_energy_mev": "float64", "rec_x_mm": "float64", "rec_y_mm": "float64",
          "rec_z_mm": "float64", "rec_r_mm": "float64", "total_pe": "float64", "n_fired": "int32"}
BRANCHES = [*TRUTH, "pmt_id", "pmt_charge"]


def energy_scale(meta: dict[str, Any], path: Path) -> tuple[float, tuple[float, ...]]:
    conditions = meta.get("conditions")
    problem = f"input {path}: its meta has no energy scale (conditions.pe_per_mev): was it written by juno-payload cal?"
    if not isinstance(conditions, dict) or "pe_per_mev" not in conditions:
        raise PayloadInputError(problem)
    try:
        scale = float(conditions["pe_per_mev"])
        nonlinearity = tuple(float(c) for c in conditions.get("nonlinearity", []))
    except (TypeError, ValueError) as exc:
        raise PayloadInputError(problem) from exc
    if not scale > 0:
        raise PayloadInputError(f"input {path}: energy scale {scale} pe/MeV is not positive")
    return scale, nonlinearity


def reconstruct(counts: np.ndarray, pmt: np.ndarray, charge: np.ndarray, pe_per_mev: float,
                nonlinearity: tuple[float, ...] = ()) -> dict[str, np.ndarray]:
    """Per event (counts[i] readouts each, flat pmt ids and charges in pe): energy, vertex, total charge."""
    n = len(counts)
    event = np.repeat(np.arange(n), counts)
    total = np.bincount(event, weights=charge, minlength=n)
    signal = np.clip(total - det.expected_dark_pe(), 1.0, None)
    positions = det.pmt_positions()[pmt]
    centroid = np.stack([np.bincount(event, weights=charge * positions[:, k], minlength=n) for k in range(3)],
                        axis=1) / signal[:, None]
    length = np.linalg.norm(centroid, axis=1)
    tables = det.radial_tables()
    radius = np.interp(length, tables.centroid, tables.radius)
    direction = centroid / np.where(length > 0, length, 1.0)[:, None]
    vertex = direction * radius[:, None]
    energy = signal / (pe_per_mev * np.interp(radius, tables.radius, tables.collection))
    if nonlinearity:
        energy = energy / np.polynomial.polynomial.polyval(energy, nonlinearity)
    return {"rec_energy_mev": energy, "rec_x_mm": vertex[:, 0], "rec_y_mm": vertex[:, 1], "rec_z_mm": vertex[:, 2],
            "rec_r_mm": radius, "total_pe": total, "n_fired": counts.astype(np.int32)}


def run(parsed: Parsed) -> Summary:
    """Reconstruct the events of a cal file, as a checked rec command line (grammar.check) says."""
    input_path, output = Path(parsed["input"]), Path(parsed["output"])
    check_output(output, input_path)
    with open_input(input_path, "calib", BRANCHES, needs="juno-payload cal") as source:
        scale, nonlinearity = energy_scale(source.meta, input_path)
        meta = {"step": "rec", **parsed.meta(), "input": str(input_path), "conditions": source.meta.get("conditions"),
                "calibration": source.meta.get("options", {}), "electronics": source.meta.get("electronics", {}),
                "simulation": source.meta.get("simulation", {})}
        with OutputTree(output, "rec", SCHEMA, meta) as out:
            for chunk in source.chunks(BRANCHES, evtmax=parsed["evtmax"]):
                counts = counts_of(chunk["pmt_id"])
                result = reconstruct(counts, flat(chunk["pmt_id"], np.int64), flat(chunk["pmt_charge"], np.float64),
                                     scale, nonlinearity)
                out.extend({**truth_columns(chunk), **result})
        return out.summary("rec", options=dict(parsed.options))
