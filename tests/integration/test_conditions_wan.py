"""Conditions across a 50 ms round trip (benchmarks/wan.py): IHEP's MariaDB and conditions service on one side of
the link, a remote site's Squid (its parent across the link) and its jobs on the other. A job is a new client that
reads one run's conditions, every payload checked against the bytes put in. Cold and warm reads, the site's Squid
down, the link cut for 3 s (30 s: marked slow, and in benchmarks/conditions.py)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from benchmarks.wan import WanLink

from juno_dcs.conditions.client import ConditionsClient
from juno_dcs.conditions.models import payload_hash
from juno_dcs.grid import conditions as grid
from tests.integration.conditions_stack import (
    ADMIN_URL,
    CondDb,
    Service,
    Squid,
    build_tag,
    make_db,
    mariadb_answers,
)

RTT = 0.050  # seconds


@dataclass
class Site:
    db: CondDb
    service: Service  # at IHEP
    link: WanLink  # the site's side of the link: link.url() is the service across it
    squid: Squid  # the site's, its parent the service across the link

    def job(self, tag: str, run: int, payloads: dict[str, bytes], retry_for: float = 0.0,
            retry_pause: float = 0.5) -> tuple[float, ConditionsClient]:
        """One job's conditions load: seconds taken, and its client; every payload is the one put in."""
        client = ConditionsClient([self.squid.url], [self.link.url()], connect_timeout=1, retry_for=retry_for,
                                  retry_pause=retry_pause)
        began = time.perf_counter()
        client.conditions(tag, run)
        seconds = time.perf_counter() - began
        refs = client.refs(tag, run)  # from the job's own cache, as are the bytes below
        got = client.fetch(refs.values())
        for folder, data in payloads.items():
            assert refs[folder].payload_hash == payload_hash(data)
            assert got[payload_hash(data)] == data, folder
        return seconds, client


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    if shutil.which("squid") is None and not Path("/usr/sbin/squid").exists():
        pytest.fail("squid is not installed: run `make setup` (scripts/setup-system.sh installs it)")
    if not mariadb_answers():
        pytest.fail(f"no MariaDB answers at {ADMIN_URL}: run `make setup`")
    root = Path(tempfile.mkdtemp(prefix="juno-conditions-wan-"))
    root.chmod(0o755)
    database = make_db()
    service = Service(root, database.reader_url)
    link = WanLink([("127.0.0.1", service.port)], rtt_ms=RTT * 1000)
    squid: Squid | None = None
    try:
        service.start()
        link.start()
        squid = Squid(grid.SquidHome(root / "squid" / "CNAF"), "CNAF", link.ports[0])
        squid.start()
        yield Site(database, service, link, squid)
    finally:
        if squid is not None:
            squid.stop()
        link.stop()
        service.stop()
        grid.drop_database(ADMIN_URL, database.name, database.reader_user, database.writer_user)
        shutil.rmtree(root, ignore_errors=True)


def test_cold_and_warm_reads_across_the_link(site: Site, tmp_path: Path) -> None:
    tag, payloads = build_tag(site.db, tmp_path)
    bundle = "/v1/bundles/" + ",".join(sorted(payload_hash(d) for d in payloads.values()))
    cold, client = site.job(tag, 1500, payloads)
    assert client.last_endpoint == site.squid.url
    assert sum(client.stats.requests.values()) == 2
    # two requests crossed the link, each once: the tag's IOV map and the bundle of the run's three payloads
    assert site.service.requests_for(f"/v1/tags/{tag}/iovs") == 1
    assert site.service.requests_for(bundle) == 1
    assert 2 * RTT <= cold < 1.0, cold
    before = site.link.stats()
    warm = [site.job(tag, 1500, payloads)[0] for _ in range(5)]
    assert site.link.stats()["bytes_up"] == before["bytes_up"]  # nothing crossed the link
    assert sorted(warm)[2] < RTT, warm
    # the first job of a new run: the map and the bundle are hits at the site, nothing crosses the link
    new_run, _ = site.job(tag, 1501, payloads)
    assert site.service.requests_for(f"/v1/tags/{tag}/iovs") == 1
    assert site.service.requests_for(f"/v1/tags/{tag}/runs/1501") == 0
    assert site.service.requests_for(bundle) == 1
    assert site.link.stats()["bytes_up"] == before["bytes_up"]
    assert new_run < RTT, new_run
    print(f"RTT {RTT * 1000:.0f} ms: cold {cold * 1000:.0f} ms ({cold / RTT:.1f} RTT), first of a new run "
          f"{new_run * 1000:.0f} ms, warm p50 {sorted(warm)[2] * 1000:.1f} ms")


def test_site_squid_down_jobs_fall_over_across_the_link(site: Site, tmp_path: Path) -> None:
    tag, payloads = build_tag(site.db, tmp_path)
    with_squid = [site.job(tag, 1600, payloads)[0] for _ in range(3)]
    site.squid.stop()
    try:
        times = []
        for _ in range(3):
            seconds, client = site.job(tag, 1600, payloads)
            assert client.last_endpoint == site.link.url()
            assert client.stats.failures == {site.squid.url: 1}
            times.append(seconds)
    finally:
        site.squid.start()
    # each job now pays the link: a new connection (handshake) and two requests across it
    assert min(times) >= 2 * RTT, times
    assert site.job(tag, 1600, payloads)[1].last_endpoint == site.squid.url  # back to the site's Squid
    print(f"Squid down: jobs {[round(t * 1000) for t in times]} ms, with it {[round(t * 1000) for t in with_squid]} "
          "ms")


@pytest.mark.parametrize("outage", [3.0, pytest.param(30.0, marks=pytest.mark.slow)])
def test_link_cut_jobs_wait_retry_and_succeed(site: Site, tmp_path: Path, outage: float) -> None:
    tag, payloads = build_tag(site.db, tmp_path)
    fresh, fresh_payloads = build_tag(site.db, tmp_path)  # never read at the site: its jobs need the link
    site.job(tag, 1500, payloads)  # warm at the site
    results: dict[int, float | BaseException] = {}

    def job(run: int) -> None:
        try:
            results[run] = site.job(fresh, run, fresh_payloads, retry_for=outage + 30, retry_pause=0.5)[0]
        except BaseException as exc:  # reported by the test below, with the run
            results[run] = exc

    site.link.cut()
    began = time.monotonic()
    try:
        # a new run of a tag the site's Squid holds (its map and payloads): no need of the link
        during, _ = site.job(tag, 1501, payloads)
        jobs = [threading.Thread(target=job, args=(run,)) for run in range(1700, 1704)]
        for thread in jobs:
            thread.start()
        time.sleep(outage - (time.monotonic() - began))
    finally:
        site.link.restore()
    for thread in jobs:
        thread.join(timeout=60)
    assert during < 1, during
    failed = {run: r for run, r in results.items() if isinstance(r, BaseException)}
    assert not failed
    assert sorted(results) == list(range(1700, 1704))
    waited = [r for r in results.values() if isinstance(r, float)]
    assert min(waited) >= outage - 0.5, waited  # they waited for the link, and no longer than a few pauses more
    assert max(waited) < outage + 10, waited
    print(f"link cut {outage:.0f} s: jobs of a new tag took {[round(w, 1) for w in waited]} s; a new run of a tag "
          f"held at the site, during the cut: "
          f"{during * 1000:.0f} ms")
