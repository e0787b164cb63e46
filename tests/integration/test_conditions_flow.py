"""Condition data end to end with real MariaDB, the real service and real Squids: round trip and caching."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from juno_dcs.conditions.client import ConditionsClient
from juno_dcs.conditions.models import EnergyScale, PmtGains, TimingOffsets, payload_hash
from tests.integration.conditions_stack import OPEN_MAX_AGE, Stack, build_tag, energy_scale, stack

__all__ = ["stack"]  # the fixture


def test_round_trip_byte_for_byte(stack: Stack, tmp_path: Path) -> None:
    """A tag built with the admin commands, read back through Squid by the client: the same bytes, typed."""
    tag, payloads = build_tag(stack.db, tmp_path, channels=17612, with_cli=True)
    client = ConditionsClient(stack.proxies("IHEP"), [stack.service.url])
    typed = client.conditions(tag, 1500)
    assert client.last_endpoint == stack.squids["IHEP"].url
    assert isinstance(typed["pmt_gains"], PmtGains)
    assert len(typed["pmt_gains"].channel) == 17612
    assert isinstance(typed["timing_offsets"], TimingOffsets)
    assert typed["energy_scale"] == EnergyScale.model_validate_json(payloads["energy_scale"])
    for folder, data in payloads.items():
        ref = client.ref(tag, folder, 1999)
        assert ref.payload_hash == payload_hash(data)
        assert client.payload_bytes(ref.payload_hash) == data


def test_export_import_round_trip(stack: Stack, tmp_path: Path) -> None:
    tag, payloads = build_tag(stack.db, tmp_path)
    stack.db.cli("export", tag, str(tmp_path / "tag.json"))
    document = json.loads((tmp_path / "tag.json").read_text())
    document["name"] = tag + "-copy"
    (tmp_path / "copy.json").write_text(json.dumps(document))
    stack.db.cli("import", str(tmp_path / "copy.json"))
    client = ConditionsClient(stack.proxies("CNAF"), [stack.service.url])
    for folder, data in payloads.items():
        assert client.payload_bytes(client.ref(tag + "-copy", folder, 1000).payload_hash) == data


def test_second_read_is_a_squid_hit(stack: Stack, tmp_path: Path) -> None:
    tag, _ = build_tag(stack.db, tmp_path)
    squid = stack.squids["IHEP"]
    path = f"/v1/tags/{tag}/runs/1234"
    first = requests.get(squid.url + path, timeout=10)
    second = requests.get(squid.url + path, timeout=10)
    assert first.headers["X-Cache"].startswith("MISS")
    assert second.headers["X-Cache"].startswith("HIT")
    assert second.content == first.content
    assert squid.results_for(path) == ["TCP_MISS", "TCP_MEM_HIT"]
    assert stack.service.requests_for(path) == 1


def test_locked_payload_is_never_refetched(stack: Stack, tmp_path: Path) -> None:
    """Five jobs at IHEP, each reading twice: two requests per job (the tag's IOV map, then the run's three
    payloads in one bundle), none for the second read; the service sees each URL once."""
    tag, payloads = build_tag(stack.db, tmp_path)
    for _ in range(5):
        client = ConditionsClient(stack.proxies("IHEP"), [stack.service.url])
        client.conditions(tag, 1500)
        assert sum(client.stats.requests.values()) == 2
        client.conditions(tag, 1500)
        assert sum(client.stats.requests.values()) == 2  # the job's own cache
    bundle = "/v1/bundles/" + ",".join(sorted(payload_hash(data) for data in payloads.values()))
    for path in (f"/v1/tags/{tag}/iovs", bundle):
        assert stack.service.requests_for(path) == 1
        assert stack.squids["IHEP"].results_for(path)[1:] == ["TCP_MEM_HIT"] * 4
    client = ConditionsClient(stack.proxies("IHEP"), [stack.service.url])
    for data in payloads.values():  # one payload alone: its own URL
        assert client.payload_bytes(payload_hash(data)) == data
        assert stack.service.requests_for(f"/v1/payloads/{payload_hash(data)}") == 1


def test_open_tag_change_reaches_jobs_within_the_bound(stack: Stack, tmp_path: Path) -> None:
    tag, _ = build_tag(stack.db, tmp_path, lock=False)
    squid = stack.squids["IHEP"]
    path = f"/v1/tags/{tag}/folders/energy_scale/runs/1500"
    client = ConditionsClient([squid.url], [stack.service.url], allow_open=True)
    before = client.ref(tag, "energy_scale", 1500).payload_hash
    time.sleep(OPEN_MAX_AGE + 0.5)
    assert client.ref(tag, "energy_scale", 1500).payload_hash == before
    assert squid.results_for(path)[-1] == "TCP_REFRESH_UNMODIFIED"  # revalidated: 304 from the service
    new = tmp_path / "new.json"
    new.write_bytes(energy_scale(1234.5))
    stack.db.cli("add", tag, "energy_scale", "1500-1500", str(new))
    # the bound is what the service tells the caches: an open tag's answers are fresh for OPEN_MAX_AGE s only
    through_squid = requests.get(squid.url + path, timeout=10)
    assert f"max-age={OPEN_MAX_AGE}" in through_squid.headers["Cache-Control"].split(", "), through_squid.headers
    deadline = time.monotonic() + 60  # how soon on this machine is for benchmarks, not for this test
    while client.ref(tag, "energy_scale", 1500).payload_hash == before:
        assert time.monotonic() < deadline, "the change never reached the job"
        time.sleep(0.1)
    assert client.payload(tag, "energy_scale", 1500) == EnergyScale(pe_per_mev=1234.5,
                                                                    nonlinearity=[1.0, 0.99, 0.98])
    assert "TCP_REFRESH_MODIFIED" in squid.results_for(path)


def test_cli_get_reads_like_a_job(stack: Stack, tmp_path: Path) -> None:
    tag, payloads = build_tag(stack.db, tmp_path)
    out = tmp_path / "gains.bin"
    stack.db.cli("get", tag, "1500", "pmt_gains", "--proxy", stack.squids["CNAF"].url, "--server",
                 stack.service.url, "-o", str(out))
    assert out.read_bytes() == payloads["pmt_gains"]
    refs = json.loads(stack.db.cli("get", tag, "1500", "--proxy", stack.squids["CNAF"].url).stdout)
    assert sorted(refs) == ["energy_scale", "pmt_gains", "timing_offsets"]
