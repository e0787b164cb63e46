"""Condition data's typed boundary: names, run ranges, typed payloads, the export file."""

from __future__ import annotations

import base64
import json

import pytest

from juno_dcs.conditions.errors import ConditionsInputError
from juno_dcs.conditions.models import (
    MAX_RUN,
    EnergyScale,
    PmtGains,
    RunRange,
    TagExport,
    check_hash,
    check_name,
    decode_payload,
    parse_export,
    payload_hash,
)


@pytest.mark.parametrize(("text", "first", "last"), [("100-200", 100, 200), ("100-", 100, MAX_RUN), ("7", 7, 7),
                                                     (" 0-0 ", 0, 0)])
def test_run_ranges(text: str, first: int, last: int) -> None:
    assert RunRange.parse(text) == RunRange(first=first, last=last)


@pytest.mark.parametrize("text", ["200-100", "-5", "a-b", "1-2-3", "", f"0-{MAX_RUN + 1}", "1.5"])
def test_bad_run_ranges_say_what(text: str) -> None:
    with pytest.raises(ConditionsInputError, match="run range"):
        RunRange.parse(text)


@pytest.mark.parametrize("name", ["JUNO-2026.v1", "pmt_gains", "a"])
def test_good_names(name: str) -> None:
    assert check_name(name, "global tag") == name


@pytest.mark.parametrize("name", ["", "1abc", "a b", "a'--", "x;DROP TABLE cond_tags", "../etc", "a" * 65, "é"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ConditionsInputError, match="global tag"):
        check_name(name, "global tag")


def test_hashes() -> None:
    assert check_hash(payload_hash(b"x")) == payload_hash(b"x")
    with pytest.raises(ConditionsInputError, match="sha256"):
        check_hash("../../etc/passwd")


def test_typed_payloads_decode() -> None:
    gains = decode_payload("pmt_gains", b'{"channel": [1, 2], "gain": [1.0, 1.1], "sigma": [0.1, 0.1]}')
    assert isinstance(gains, PmtGains)
    assert gains.gain == [1.0, 1.1]
    assert decode_payload("energy_scale", b'{"pe_per_mev": 1600}') == EnergyScale(pe_per_mev=1600)
    assert decode_payload("json", b"[1, 2]") == [1, 2]
    assert decode_payload("bytes", b"\x00\xff") == b"\x00\xff"


@pytest.mark.parametrize(("kind", "data", "reason"), [
    ("pmt_gains", b'{"channel": [1, 2], "gain": [1.0], "sigma": [0.1, 0.1]}', "gain has 1 values for 2 channels"),
    ("pmt_gains", b'{"channel": [1, 1], "gain": [1, 1], "sigma": [0, 0]}', "not unique"),
    ("energy_scale", b'{"pe_per_mev": -1}', "greater than 0"),
    ("timing_offsets", b"not json", "must be JSON"),
    ("json", b"\xff", "must be JSON"),
])
def test_bad_payloads_say_why(kind: str, data: bytes, reason: str) -> None:
    with pytest.raises(ConditionsInputError, match=reason):
        decode_payload(kind, data, where="f.json")


def _export(**changes: object) -> dict[str, object]:
    data = b'{"pe_per_mev": 1600}'
    digest = payload_hash(data)
    document: dict[str, object] = {
        "format": "juno-conditions-tag/1", "name": "T1", "state": "locked", "description": "",
        "folders": [{"name": "energy_scale", "payload_type": "energy_scale", "description": ""}],
        "iovs": [{"folder": "energy_scale", "first_run": 0, "last_run": 10, "payload": digest}],
        "payloads": {digest: base64.b64encode(data).decode()},
    }
    document.update(changes)
    return document


def test_export_round_trip() -> None:
    parsed = parse_export(json.dumps(_export()), "t.json")
    assert isinstance(parsed, TagExport)
    assert parsed.payload_bytes(parsed.iovs[0].payload) == b'{"pe_per_mev": 1600}'


@pytest.mark.parametrize(("changes", "reason"), [
    ({"payloads": {payload_hash(b"x"): base64.b64encode(b"y").decode()}}, "sha256 is"),
    ({"iovs": [{"folder": "gains", "first_run": 0, "last_run": 1, "payload": payload_hash(b"x")}]}, "not in folders"),
    ({"iovs": [{"folder": "energy_scale", "first_run": 5, "last_run": 1,
                "payload": payload_hash(b'{"pe_per_mev": 1600}')}]}, "before first run"),
    ({"name": "bad name"}, "name"),
    ({"format": "other/2"}, "format"),
    ({"extra": 1}, "extra"),
])
def test_bad_export_files_name_file_and_field(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(ConditionsInputError, match=f"t.json: .*{reason}"):
        parse_export(json.dumps(_export(**changes)), "t.json")


def test_export_payload_checked_against_folder_type() -> None:
    data = b'{"nope": 1}'
    digest = payload_hash(data)
    document = _export(iovs=[{"folder": "energy_scale", "first_run": 0, "last_run": 1, "payload": digest}],
                       payloads={digest: base64.b64encode(data).decode()})
    with pytest.raises(ConditionsInputError, match=r"iovs.0 \(energy_scale\).*not a valid energy_scale"):
        parse_export(json.dumps(document), "t.json")


def test_export_not_json() -> None:
    with pytest.raises(ConditionsInputError, match=r"t\.json: not JSON"):
        parse_export("{", "t.json")
