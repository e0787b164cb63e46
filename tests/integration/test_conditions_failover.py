"""Failover with real Squids, service and MariaDB: a Squid stops -> the next proxy -> the server; the server or
its database stops -> cached answers are still served where allowed, and the rest fails clearly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from juno_dcs.conditions.client import ConditionsClient, ConditionsUnavailable
from tests.integration.conditions_stack import OPEN_MAX_AGE, Stack, build_tag, stack

__all__ = ["stack"]  # the fixture


def test_squid_stopped_next_proxy_then_server(stack: Stack, tmp_path: Path) -> None:
    tag, payloads = build_tag(stack.db, tmp_path)
    ihep, cnaf = stack.squids["IHEP"], stack.squids["CNAF"]
    try:
        ihep.stop()
        client = ConditionsClient(stack.proxies("IHEP", "CNAF"), [stack.service.url], connect_timeout=1)
        assert client.payload_bytes(client.ref(tag, "pmt_gains", 1000).payload_hash) == payloads["pmt_gains"]
        assert client.last_endpoint == cnaf.url
        assert client.stats.failures == {ihep.url: 1}  # then set aside: not asked again for the payload
        cnaf.stop()
        client = ConditionsClient(stack.proxies("IHEP", "CNAF"), [stack.service.url], connect_timeout=1)
        assert client.payload_bytes(client.ref(tag, "energy_scale", 1000).payload_hash) == payloads["energy_scale"]
        assert client.last_endpoint == stack.service.url
    finally:
        ihep.start()
        cnaf.start()
    client = ConditionsClient(stack.proxies("IHEP", "CNAF"), [stack.service.url])
    client.refs(tag, 1000)
    assert client.last_endpoint == ihep.url  # back to the local Squid


def test_server_stopped_cached_answers_still_served(stack: Stack, tmp_path: Path) -> None:
    locked, payloads = build_tag(stack.db, tmp_path)
    open_tag, _ = build_tag(stack.db, tmp_path, lock=False)
    unseen, _ = build_tag(stack.db, tmp_path)  # never read through the Squid
    ihep = stack.squids["IHEP"]
    job = ConditionsClient([ihep.url], [stack.service.url], allow_open=True)
    warm = {t: job.conditions(t, 1500) for t in (locked, open_tag)}
    stack.service.stop()
    try:
        time.sleep(OPEN_MAX_AGE + 0.5)  # the open tag's answers are stale now
        assert job.conditions(locked, 1500) == warm[locked]  # the job's own cache
        fresh = ConditionsClient([ihep.url], [stack.service.url], allow_open=True, connect_timeout=1)
        assert fresh.conditions(locked, 1500) == warm[locked]  # Squid: fresh for a locked tag
        assert fresh.conditions(open_tag, 1500) == warm[open_tag]  # Squid: stale, revalidation failed
        assert ihep.results_for(f"/v1/tags/{open_tag}/iovs")[-1] == "TCP_REFRESH_FAIL_OLD"
        reply = requests.get(f"{ihep.url}/v1/tags/{open_tag}/iovs", timeout=5)
        assert "Revalidation failed" in reply.headers.get("Warning", "")
        assert set(fresh.refs(locked, 1777)) == set(payloads)  # a new run: resolved from the map Squid holds
        with pytest.raises(ConditionsUnavailable) as caught:
            fresh.refs(unseen, 1500)  # never asked before: nobody has it
        assert [u for u, _ in caught.value.attempts] == [ihep.url, stack.service.url]
        assert fresh.payload_bytes(fresh.refs(locked, 1500)["pmt_gains"].payload_hash) == payloads["pmt_gains"]
    finally:
        stack.service.start()


@pytest.mark.slow  # the database stopped until Squid's copies go stale
def test_database_down_503_and_squid_serves_stale(stack: Stack, tmp_path: Path) -> None:
    open_tag, _ = build_tag(stack.db, tmp_path, lock=False)
    unseen, _ = build_tag(stack.db, tmp_path, lock=False)  # never read through the Squid
    ihep = stack.squids["IHEP"]
    job = ConditionsClient([ihep.url], [stack.service.url], allow_open=True)
    warm = job.refs(open_tag, 1500)
    stack.db.cut_reader_off()
    try:
        health = requests.get(f"{stack.service.url}/health", timeout=10)
        assert health.status_code == 503
        direct = requests.get(f"{stack.service.url}/v1/tags/{open_tag}/runs/1600", timeout=10)
        assert (direct.status_code, direct.headers["Retry-After"]) == (503, "5")
        assert "database does not answer" in direct.json()["detail"]
        assert direct.headers["Cache-Control"] == "no-store"
        time.sleep(OPEN_MAX_AGE + 0.5)
        fresh = ConditionsClient([ihep.url], [stack.service.url], allow_open=True)
        assert fresh.refs(open_tag, 1500) == warm  # stale from Squid while the service answers 503
        assert ihep.results_for(f"/v1/tags/{open_tag}/iovs")[-1] == "TCP_REFRESH_FAIL_OLD"
        with pytest.raises(ConditionsUnavailable, match="HTTP 503"):
            fresh.refs(unseen, 1601)
    finally:
        stack.db.reconnect_reader()
    deadline = time.monotonic() + 15
    while requests.get(f"{stack.service.url}/health", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover after the database came back"
        time.sleep(0.2)
