"""The conditions client through a fake session: failover order, set-aside endpoints, in-process caching."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import requests

from juno_dcs.conditions.client import ConditionsClient, ConditionsUnavailable, OpenTagRefused
from juno_dcs.conditions.errors import ConditionsInputError, NotFound
from juno_dcs.conditions.models import EnergyScale

DATA = b'{"pe_per_mev": 1600}'
DIGEST = hashlib.sha256(DATA).hexdigest()
REF = {"folder": "energy_scale", "payload_type": "energy_scale", "first_run": 0, "last_run": 9,
       "payload_hash": DIGEST, "payload_size": len(DATA)}


def _reply(status: int, body: bytes, **headers: str) -> requests.Response:
    reply = requests.Response()
    reply.status_code = status
    reply._content = body
    reply.headers.update(headers)
    return reply


class FakeSession(requests.Session):
    """Answers by URL prefix: an exception instance is raised, a Response returned; every call is recorded."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__()
        self.answers = answers
        self.calls: list[str] = []

    def get(self, url: str | bytes, **_: Any) -> requests.Response:  # type: ignore[override]
        url = str(url)
        self.calls.append(url)
        for prefix, answer in self.answers.items():
            if url.startswith(prefix):
                if isinstance(answer, Exception):
                    raise answer
                return answer(url) if callable(answer) else answer  # type: ignore[no-any-return]
        raise requests.ConnectionError(url)


def service(state: str = "locked", max_age: int = 100, age: int = 0, maps: bool = True) -> Any:
    """A conditions service with one folder; `maps=False` is a service older than IOV maps."""
    def answer(url: str) -> requests.Response:
        if "/v1/payloads/" in url:
            return _reply(200, DATA)
        if url.endswith("/iovs") and not maps:
            return _reply(404, b'{"detail": "Not Found"}')
        iovs = [[REF["first_run"], REF["last_run"], REF["payload_hash"], REF["payload_size"]]]
        body = ({"tag": "T", "tag_state": state, "folders": {"energy_scale": {"payload_type": "energy_scale",
                                                                                "iovs": iovs}}}
                if url.endswith("/iovs") else
                {"tag": "T", "tag_state": state, "run": 5, "payload": REF, "folders": {"energy_scale": REF}})
        return _reply(200, json.dumps(body).encode(), **{"Cache-Control": f"public, max-age={max_age}",
                                                          "Age": str(age)})
    return answer


def test_tries_proxies_then_servers_and_sets_failures_aside() -> None:
    session = FakeSession({"http://squid1": requests.ConnectionError("down"), "http://squid2": requests.Timeout(),
                           "http://server": service()})
    client = ConditionsClient(["http://squid1", "http://squid2"], ["http://server"], session=session, cache=False)
    assert client.payload("T", "energy_scale", 5) == EnergyScale(pe_per_mev=1600)
    assert client.last_endpoint == "http://server"
    assert session.calls[:3] == ["http://squid1/v1/tags/T/folders/energy_scale/runs/5",
                                 "http://squid2/v1/tags/T/folders/energy_scale/runs/5",
                                 "http://server/v1/tags/T/folders/energy_scale/runs/5"]
    assert session.calls[3] == f"http://server/v1/payloads/{DIGEST}"  # the failed ones are set aside
    assert client.stats.failures == {"http://squid1": 1, "http://squid2": 1}


def test_5xx_and_corrupt_payload_move_on() -> None:
    session = FakeSession({"http://squid1/v1/payloads": _reply(200, b"corrupt"),
                           "http://squid1": _reply(503, b"{}"), "http://server": service()})
    client = ConditionsClient(["http://squid1"], ["http://server"], session=session, retry_after=0)
    assert client.payload_bytes(DIGEST) == DATA
    assert client.last_endpoint == "http://server"
    assert client.ref("T", "energy_scale", 5).payload_hash == DIGEST
    assert client.last_endpoint == "http://server"


def test_4xx_is_the_answer() -> None:
    session = FakeSession({"http://squid1": _reply(404, b'{"detail": "unknown global tag \'T\'"}'),
                           "http://server": service()})
    client = ConditionsClient(["http://squid1"], ["http://server"], session=session)
    with pytest.raises(NotFound, match="unknown global tag"):
        client.refs("T", 5)
    # the map's 404 is not raised: the run's lookup names what is missing (a service without maps answers it)
    assert session.calls == ["http://squid1/v1/tags/T/iovs", "http://squid1/v1/tags/T/runs/5"]


def test_everything_down() -> None:
    client = ConditionsClient(["http://squid1"], ["http://server"], session=FakeSession({}))
    with pytest.raises(ConditionsUnavailable, match="no conditions endpoint answered") as caught:
        client.refs("T", 5)
    assert [u for u, _ in caught.value.attempts] == ["http://squid1", "http://server"]


def test_in_process_cache_keeps_locked_answers_and_payloads() -> None:
    session = FakeSession({"http://server": service()})
    client = ConditionsClient([], ["http://server"], session=session)
    first = client.conditions("T", 5)
    assert client.conditions("T", 5) == first
    assert len(session.calls) == 2  # one lookup, one payload
    assert client.stats.cache_hits >= 1


def test_open_answers_expire_by_max_age_minus_age() -> None:
    session = FakeSession({"http://server": service(state="open", max_age=30, age=30)})
    client = ConditionsClient([], ["http://server"], session=session, allow_open=True)
    client.refs("T", 5)
    client.refs("T", 5)
    assert len(session.calls) == 2  # Age used up the max-age: asked again


def test_open_tags_refused_by_default() -> None:
    client = ConditionsClient([], ["http://server"], session=FakeSession({"http://server": service(state="open")}))
    with pytest.raises(OpenTagRefused, match="locked tags"):
        client.refs("T", 5)


@pytest.mark.parametrize(("tag", "run"), [("T'--", 5), ("T", -1), ("T", "5")])
def test_bad_input_refused_before_sending(tag: str, run: Any) -> None:
    session = FakeSession({})
    client = ConditionsClient([], ["http://server"], session=session)
    with pytest.raises(ConditionsInputError):
        client.refs(tag, run)
    assert session.calls == []


def test_missing_folder() -> None:
    client = ConditionsClient([], ["http://server"], session=FakeSession({"http://server": service()}))
    with pytest.raises(NotFound, match="pmt_gains"):
        client.conditions("T", 5, folders=["energy_scale", "pmt_gains"])


def test_needs_an_endpoint() -> None:
    with pytest.raises(ConditionsInputError, match="at least one"):
        ConditionsClient()


def _three_folders() -> tuple[dict[str, bytes], dict[str, Any]]:
    data = {"energy_scale": DATA, "extra_a": b'"a"', "extra_b": b"[1, 2, 3]"}
    refs = {name: {**REF, "folder": name, "payload_type": "energy_scale" if name == "energy_scale" else "json",
                   "payload_hash": hashlib.sha256(d).hexdigest(), "payload_size": len(d)}
            for name, d in data.items()}
    return data, refs


def bundle_service(corrupt: bool = False, bundles: bool = True, maps: bool = True) -> Any:
    """A service with three folders that answers bundles (hashes in the path's order) and IOV maps, or does not
    know them."""
    data, refs = _three_folders()
    by_hash = {hashlib.sha256(d).hexdigest(): d for d in data.values()}

    def answer(url: str) -> requests.Response:
        if "/v1/bundles/" in url:
            if not bundles:
                return _reply(404, b'{"detail": "Not Found"}')
            body = b"".join(by_hash[h] for h in url.rsplit("/", 1)[1].split(","))
            return _reply(200, body[:-1] + b"!" if corrupt else body)
        if "/v1/payloads/" in url:
            return _reply(200, by_hash[url.rsplit("/", 1)[1]])
        if url.endswith("/iovs"):
            if not maps:
                return _reply(404, b'{"detail": "Not Found"}')
            folders = {name: {"payload_type": r["payload_type"],
                              "iovs": [[r["first_run"], r["last_run"], r["payload_hash"], r["payload_size"]]]}
                       for name, r in refs.items()}
            body = {"tag": "T", "tag_state": "locked", "folders": folders}
        else:
            body = {"tag": "T", "tag_state": "locked", "run": 5, "folders": refs}
        return _reply(200, json.dumps(body).encode(), **{"Cache-Control": "public, max-age=100"})
    return answer


def test_a_cold_read_is_two_requests_the_payloads_in_one_sorted_bundle() -> None:
    data, _ = _three_folders()
    session = FakeSession({"http://squid1": bundle_service()})
    client = ConditionsClient(["http://squid1"], [], session=session)
    typed = client.conditions("T", 5)
    assert typed["energy_scale"] == EnergyScale(pe_per_mev=1600)
    assert typed["extra_b"] == [1, 2, 3]
    digests = sorted(hashlib.sha256(d).hexdigest() for d in data.values())
    assert session.calls == ["http://squid1/v1/tags/T/iovs", "http://squid1/v1/bundles/" + ",".join(digests)]
    assert client.conditions("T", 5) == typed
    assert len(session.calls) == 2  # the job's own cache
    uncached = ConditionsClient(["http://squid1"], [], session=session, cache=False)
    assert uncached.conditions("T", 5) == typed
    assert len(session.calls) == 4  # without the cache: the same two requests again


def test_a_corrupt_bundle_moves_on_and_an_old_service_gets_single_payloads() -> None:
    session = FakeSession({"http://squid1": bundle_service(corrupt=True), "http://server": bundle_service()})
    client = ConditionsClient(["http://squid1"], ["http://server"], session=session)
    typed = client.conditions("T", 5)
    assert typed["extra_a"] == "a"
    assert client.stats.failures == {"http://squid1": 1}
    assert session.calls[-1].startswith("http://server/v1/bundles/")
    old = FakeSession({"http://server": bundle_service(bundles=False, maps=False)})
    assert ConditionsClient([], ["http://server"], session=old).conditions("T", 5) == typed
    assert [c.split("/", 4)[4] for c in old.calls[:2]] == ["tags/T/iovs", "tags/T/runs/5"]
    assert [c.split("/")[4] for c in old.calls[2:]] == ["bundles", "payloads", "payloads", "payloads"]


def map_service(iovs: list[list[Any]], status: int = 200) -> Any:
    """A service whose one folder has the intervals `iovs` (oldest first), or whose map answers `status`."""
    def answer(url: str) -> requests.Response:
        if url.endswith("/iovs"):
            if status != 200:
                return _reply(status, b'{"detail": "global tag \'T\' has more than 3 intervals of validity"}')
            body = {"tag": "T", "tag_state": "locked",
                    "folders": {"energy_scale": {"payload_type": "energy_scale", "iovs": iovs}}}
            return _reply(200, json.dumps(body).encode(), **{"Cache-Control": "public, max-age=100"})
        run = int(url.rsplit("/", 1)[1])
        found = [i for i in iovs if i[0] <= run <= i[1]]
        refs = {} if not found else {"energy_scale": {**REF, "first_run": found[-1][0], "last_run": found[-1][1],
                                                      "payload_hash": found[-1][2]}}
        return _reply(200, json.dumps({"tag": "T", "tag_state": "locked", "run": run, "folders": refs}).encode())
    return answer


def test_the_iov_map_resolves_every_run_like_the_service_in_one_request() -> None:
    """Overlapping intervals: the newest covering a run wins, as in the service's lookup; a run no interval
    covers has no entry. Every run of the tag comes from the one map."""
    iovs = [[0, 100, "a" * 64, 20], [50, 60, "b" * 64, 20], [55, 200, "c" * 64, 20], [300, 300, "d" * 64, 20]]
    session = FakeSession({"http://server": map_service(iovs)})
    client = ConditionsClient([], ["http://server"], session=session)
    lookups = ConditionsClient([], ["http://server"], session=FakeSession({"http://server": map_service(iovs)}),
                               iov_map=False)
    for run in (0, 49, 50, 54, 55, 60, 61, 150, 200, 201, 299, 300, 301):
        from_map = {f: r.payload_hash for f, r in client.refs("T", run).items()}
        assert from_map == {f: r.payload_hash for f, r in lookups.refs("T", run).items()}, run
    assert client.refs("T", 57)["energy_scale"].payload_hash == "c" * 64
    assert client.refs("T", 250) == {}
    assert session.calls == ["http://server/v1/tags/T/iovs"]


def test_a_map_too_large_is_read_run_by_run() -> None:
    session = FakeSession({"http://server": map_service([[0, 9, DIGEST, len(DATA)]], status=413)})
    client = ConditionsClient([], ["http://server"], session=session)
    assert client.refs("T", 5)["energy_scale"].payload_hash == DIGEST
    assert client.refs("T", 6)["energy_scale"].payload_hash == DIGEST
    assert [c.rsplit("/", 1)[1] for c in session.calls] == ["iovs", "5", "6"]  # the map is not asked again
    assert client.stats.failures == {}  # a 413 is the service's answer, not a failed endpoint


def test_retry_for_rides_out_an_outage() -> None:
    """Every endpoint down for the first two rounds: a client with retry_for waits and gets the answer."""
    answer = service()
    rounds: list[str] = []

    def flaky(url: str) -> requests.Response:
        rounds.append(url)
        if len(rounds) <= 4:
            raise requests.ConnectionError("link cut")
        return answer(url)

    session = FakeSession({"http://squid1": flaky, "http://server": flaky})
    client = ConditionsClient(["http://squid1"], ["http://server"], session=session, retry_for=5, retry_pause=0.05)
    assert client.refs("T", 5)["energy_scale"].payload_hash == DIGEST
    assert len(rounds) == 5  # two rounds of both endpoints, then the Squid answers
    impatient = ConditionsClient(["http://squid1"], [], session=FakeSession({}), retry_for=0.2, retry_pause=0.05)
    began = time.monotonic()
    with pytest.raises(ConditionsUnavailable):
        impatient.refs("T", 5)
    assert 0.2 <= time.monotonic() - began < 1
