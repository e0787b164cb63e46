"""The payloads' condition data: the global tag that matches the toy detector, and reading it back for cal.

Three folders, one payload each for the run range:
    pmt_gains        PmtGains: channel 0..N_PMT-1, gain (ADC counts per photoelectron), sigma (its spread)
    timing_offsets   TimingOffsets: channel 0..N_PMT-1, offset_ns
    energy_scale     EnergyScale: pe_per_mev = the light yield at the centre, nonlinearity [] (linear)

`make_conditions` writes them with the conditions admin logic (juno_dcs.conditions.logic, the writer account's
path that `juno-dcs conditions create-tag/add/lock` take) in one transaction and locks the tag. A replay is safe:
a locked tag that already holds exactly these payloads for these runs is left as it is; with anything else it is
a Conflict. `load_conditions` reads them through a ConditionsClient (proxies, then servers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from juno_dcs.conditions.client import ConditionsClient
from juno_dcs.conditions.errors import Conflict, DatabaseUnavailable, NotFound
from juno_dcs.conditions.models import EnergyScale, PmtGains, RunRange, TimingOffsets, payload_hash
from juno_dcs.payloads import detector as det
from juno_dcs.payloads.errors import PayloadInputError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

URLS_ENV = "JUNO_CONDITIONS_URLS"
FOLDERS = ("pmt_gains", "timing_offsets", "energy_scale")  # folder name = its payload type


def condition_payloads() -> dict[str, bytes]:
    """The payload bytes of each folder, from the detector model's true constants."""
    elec = det.electronics()
    channels = list(range(det.N_PMT))
    documents = {
        "pmt_gains": PmtGains(channel=channels, gain=elec.gain_adc_per_pe.tolist(),
                              sigma=elec.spe_sigma_adc.tolist()),
        "timing_offsets": TimingOffsets(channel=channels, offset_ns=elec.offset_ns.tolist()),
        "energy_scale": EnergyScale(pe_per_mev=det.LIGHT_YIELD, nonlinearity=[]),
    }
    return {name: json.dumps(doc.model_dump(), separators=(",", ":")).encode() for name, doc in documents.items()}


@dataclass(frozen=True)
class MadeTag:
    tag: str
    first_run: int
    last_run: int
    created: bool  # False: the tag was there, locked, with exactly these payloads
    payloads: dict[str, str]  # folder -> sha256

    def to_json(self) -> str:
        return json.dumps({"tag": self.tag, "runs": f"{self.first_run}-{self.last_run}", "state": "locked",
                           "created": self.created, "detector": det.DETECTOR_VERSION, "payloads": self.payloads})


def make_conditions(conn: Connection, tag: str, runs: RunRange, description: str = "") -> MadeTag:
    """Create, fill and lock `tag` in the caller's transaction."""
    from juno_dcs.conditions import logic

    payloads = condition_payloads()
    hashes = {name: payload_hash(data) for name, data in payloads.items()}
    wanted = {(name, runs.first, runs.last, digest) for name, digest in hashes.items()}
    try:
        existing = logic.get_tag(conn, tag)
    except NotFound:
        existing = None
    if existing is not None and existing.state == "locked":
        have = {(i.folder, i.first_run, i.last_run, i.payload_hash) for i in logic.show_tag(conn, tag).iovs}
        if have != wanted:
            raise Conflict(f"global tag {tag!r} is locked with other payloads or runs than the detector model "
                           f"{det.DETECTOR_VERSION} for runs {runs.first}-{runs.last}; use another tag name")
        return MadeTag(tag, runs.first, runs.last, False, hashes)
    logic.create_tag(conn, tag, description or f"toy JUNO detector {det.DETECTOR_VERSION} (juno-payload)")
    for name, data in payloads.items():
        folder = logic.folder_for(conn, name, name)
        logic.add_payload(conn, tag, folder, runs, data)
    logic.lock_tag(conn, tag)
    return MadeTag(tag, runs.first, runs.last, True, hashes)


@contextmanager
def writer_transaction(db_url: str) -> Iterator[Connection]:
    """One transaction on the conditions database as the writer account (errors as in `juno-dcs conditions`)."""
    import sqlalchemy as sa

    from juno_dcs.conditions import db

    engine = db.make_engine(db_url, pool_size=1)
    where = sa.engine.make_url(db_url).render_as_string(hide_password=True)
    try:
        with engine.begin() as conn:
            yield conn
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.ProgrammingError) as exc:
        raise DatabaseUnavailable(f"conditions database {where}: {exc.orig or exc}") from exc
    finally:
        engine.dispose()


@dataclass(frozen=True)
class DetectorConditions:
    """What cal needs, indexed by channel (= PMT id)."""

    tag: str
    run: int
    gain: np.ndarray
    offset_ns: np.ndarray
    pe_per_mev: float
    nonlinearity: tuple[float, ...]
    hashes: Mapping[str, str]

    def meta(self) -> dict[str, object]:
        return {"tag": self.tag, "run": self.run, "pe_per_mev": self.pe_per_mev,
                "nonlinearity": list(self.nonlinearity), "payloads": dict(self.hashes)}


def _by_channel(channels: list[int], values: list[float], what: str, tag: str, run: int) -> np.ndarray:
    ids = np.asarray(channels, dtype=np.int64)
    expected = np.arange(det.N_PMT)
    if len(ids) != det.N_PMT or not np.array_equal(np.sort(ids), expected):
        outside = sorted(set(ids.tolist()) - set(expected.tolist()))[:5]
        missing = sorted(set(expected.tolist()) - set(ids.tolist()))[:5]
        raise PayloadInputError(
            f"conditions {tag!r} run {run}: {what} has {len(ids)} channels, the detector model "
            f"{det.DETECTOR_VERSION} has {det.N_PMT} (channels 0-{det.N_PMT - 1}); "
            f"missing e.g. {missing}, unknown e.g. {outside} (make the tag with `juno-payload make-conditions`)")
    table = np.empty(det.N_PMT)
    table[ids] = np.asarray(values, dtype=np.float64)
    return table


def load_conditions(client: ConditionsClient, tag: str, run: int) -> DetectorConditions:
    """The calibration constants of `run` in the locked `tag`, read through `client`."""
    refs = client.refs(tag, run)
    missing = [f for f in FOLDERS if f not in refs]
    if missing:
        raise NotFound(f"global tag {tag!r} has no payload for run {run} in folder(s) {', '.join(missing)}")
    data = client.fetch(refs[f] for f in FOLDERS)  # one bundle: a cold read is two requests, not four
    gains, offsets, scale = (client.decoded(refs[f], data[refs[f].payload_hash]) for f in FOLDERS)
    if not (isinstance(gains, PmtGains) and isinstance(offsets, TimingOffsets) and isinstance(scale, EnergyScale)):
        raise PayloadInputError(f"conditions {tag!r} run {run}: folders {', '.join(FOLDERS)} must hold payloads "
                                f"of the types of the same names")
    gain = _by_channel(gains.channel, gains.gain, "pmt_gains", tag, run)
    if not np.all(gain > 0):
        raise PayloadInputError(f"conditions {tag!r} run {run}: pmt_gains has gains <= 0")
    return DetectorConditions(tag=tag, run=run, gain=gain,
                              offset_ns=_by_channel(offsets.channel, offsets.offset_ns, "timing_offsets", tag, run),
                              pe_per_mev=scale.pe_per_mev, nonlinearity=tuple(scale.nonlinearity),
                              hashes={f: refs[f].payload_hash for f in FOLDERS})


def client_from_env(environ: Mapping[str, str] | None = None) -> ConditionsClient:
    """A client for the comma-separated URLs of JUNO_CONDITIONS_URLS, tried in that order (proxies first)."""
    value = (os.environ if environ is None else environ).get(URLS_ENV, "")
    urls = [u.strip() for u in value.split(",") if u.strip()]
    if not urls:
        raise PayloadInputError(f"{URLS_ENV} is not set: give the conditions URLs, comma-separated, "
                                "proxies (the site's Squid first) then servers")
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise PayloadInputError(f"{URLS_ENV}: {', '.join(bad)} is not an http(s) URL")
    return ConditionsClient(proxies=urls[:-1], servers=urls[-1:])
