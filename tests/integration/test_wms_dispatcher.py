"""The dispatcher against real PostgreSQL: `juno-wms serve` processes on free ports, the agent in-process.

Every test starts on empty tables (truncated); the database is thrown away at the end of the module."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from juno_dcs.wms.agent import Agent
from juno_dcs.wms.client import WmsClient, WmsError
from juno_dcs.wms.failures import group
from juno_dcs.wms.models import FinishReport, JobSpec, OutputFile
from tests.integration.wms_helpers import Server, agent_for, throwaway_database, truncate, write_config


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


@pytest.fixture(scope="module")
def config(database: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("wms"), database, lease_s=3, agent_bulk=500)


@pytest.fixture(scope="module")
def server(config: Path) -> Iterator[Server]:
    with Server(config, workers=1) as srv:
        yield srv


@pytest.fixture
def client(server: Server, database: str) -> Iterator[WmsClient]:
    truncate(database)
    with WmsClient(server.url, timeout=60) as c:
        yield c


@pytest.fixture
def agent(config: Path, client: WmsClient) -> Iterator[Agent]:
    with agent_for(config) as a:
        yield a


def specs(n: int, **kw: object) -> list[JobSpec]:
    return [JobSpec.model_validate({"key": f"j{i}", "transformation": "detsim", "memory_mb": 200, **kw})
            for i in range(n)]


def settle(agent: Agent) -> None:
    while agent.run_once().full:
        pass


def test_bulk_submission_of_10000_jobs(client: WmsClient, agent: Agent) -> None:
    # how fast: benchmarks/wms.py (submit_10k_s)
    task_id, job_ids = client.submit_task("bulk", "production", "production", specs(10000), priority=5)
    assert len(set(job_ids)) == 10000
    task = client.task(task_id)
    assert task["jobs_by_state"] == {"defined": 10000}
    job = client.job(job_ids[1234])
    assert job["key"] == "j1234"
    assert job["priority"] == 5
    assert [h["state"] for h in job["history"]] == ["defined"]
    with pytest.raises(WmsError) as err:
        client.submit_task("bulk", "production", "production", specs(1))
    assert err.value.status == 409
    assert "exists" in err.value.detail
    settle(agent)
    assert client.task(task_id)["jobs_by_state"] == {"activated": 10000}
    loads = {q["queue"]: q["jobs"].get("activated", 0) for q in client.queues()}
    assert max(loads.values()) - min(v for v in loads.values() if v) <= 1  # spread by load


def test_add_jobs_is_idempotent(client: WmsClient) -> None:
    task_id, first = client.submit_task("grow", "user", "alice", specs(3))
    again = client.add_jobs(task_id, specs(5))
    assert again[:3] == first
    assert len(set(again)) == 5
    assert client.add_jobs(task_id, specs(5)) == again
    assert client.task(task_id)["jobs_total"] == 5
    with pytest.raises(WmsError) as err:
        client.add_jobs(999999, specs(1))
    assert err.value.status == 404


def test_getjob_matches_the_slot_and_priority(client: WmsClient, agent: Agent) -> None:
    client.submit_task("low", "user", "alice", specs(2, site="CNAF"))
    client.submit_task("high", "user", "bob", [
        *specs(1, site="CNAF", priority=10),
        JobSpec(key="big", transformation="rec", cores=4, memory_mb=1000, site="CNAF")])
    settle(agent)
    assert client.get_job("p", "JINR", "JINR", 8, 12800, 3600) is None  # nothing at JINR
    assert client.get_job("p", "CNAF", "CNAF", 1, 300, 60) is None  # walltime too short
    first = client.get_job("p", "CNAF", "CNAF", 1, 300, 3600)
    assert first is not None
    assert (first.task_name, first.owner, first.output_rse, first.lease_s) == ("high", "bob", "CNAF_DISK", 3)
    got = client.get_job("p", "CNAF", "CNAF", 1, 300, 3600)
    assert got is not None
    assert got.task_name == "low"
    assert client.get_job("p", "CNAF", "CNAF", 1, 300, 3600) is not None
    assert client.get_job("p", "CNAF", "CNAF", 1, 300, 3600) is None  # "big" needs 4 cores
    big = client.get_job("p", "CNAF", "CNAF", 4, 1200, 3600)
    assert big is not None
    assert big.key == "big"


def _grab(urls: list[str], n_threads: int, got: list[int], errors: list[str]) -> None:
    def pilot(i: int) -> None:
        with WmsClient(urls[i % len(urls)]) as c:
            try:
                while (job := c.get_job(f"pilot-{i}", "IHEP", "IHEP", 1, 400, 3600)) is not None:
                    got.append(job.job_id)
            except WmsError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=pilot, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_getjob_never_gives_a_job_twice(client: WmsClient, agent: Agent, server: Server) -> None:
    _, job_ids = client.submit_task("race", "production", "production", specs(600, site="IHEP"))
    settle(agent)
    got: list[int] = []
    errors: list[str] = []
    _grab([server.url], 30, got, errors)
    assert not errors
    assert sorted(got) == sorted(job_ids)
    assert client.task(1)["jobs_by_state"] == {"sent": 600}


def test_getjob_atomic_across_two_server_processes(client: WmsClient, agent: Agent, config: Path,
                                                   server: Server) -> None:
    _, job_ids = client.submit_task("race2", "production", "production", specs(1000, site="IHEP"))
    settle(agent)
    with Server(config, workers=2) as second:
        got: list[int] = []
        errors: list[str] = []
        _grab([server.url, second.url], 40, got, errors)
    assert not errors
    assert len(got) == len(set(got)) == 1000
    assert set(got) == set(job_ids)
    with psycopg.connect(client_db(config)) as conn:
        sent = conn.execute("SELECT count(*) FROM wms.job_history WHERE state = 'sent'").fetchone()
    assert sent == (1000,)


def client_db(config: Path) -> str:
    from juno_dcs.wms.config import load_config

    return load_config(config).database_url


def _run_one(client: WmsClient, agent: Agent, pilot: str = "p1", site: str = "IHEP", memory: int = 400) -> int:
    settle(agent)
    job = client.get_job(pilot, site, site, 1, memory, 3600)
    assert job is not None
    return job.job_id


def test_heartbeat_finish_and_wrong_pilot(client: WmsClient, agent: Agent) -> None:
    client.submit_task("life", "production", "production", specs(1, site="IHEP"))
    job_id = _run_one(client, agent)
    assert client.heartbeat(job_id, "p1", "starting") == "continue"
    assert client.heartbeat(job_id, "p1", "running") == "continue"
    with pytest.raises(WmsError) as err:
        client.heartbeat(job_id, "intruder", "running")
    assert err.value.status == 409
    assert "no longer pilot intruder's" in err.value.detail
    with pytest.raises(WmsError) as back:
        client.heartbeat(job_id, "p1", "starting")
    assert back.value.status == 400
    out = OutputFile(scope="juno", name="a.root", bytes=10, adler32="0a0b0c0d", rse="IHEP_DISK")
    report = FinishReport(state="finished", exit_code=0, outputs=[out])
    done = client.finish(job_id, "p1", report)
    assert done["state"] == "finished"
    assert done["output_files"][0]["name"] == "a.root"
    assert client.finish(job_id, "p1", report)["state"] == "finished"  # a replayed report changes nothing
    assert [h["state"] for h in done["history"]] == ["defined", "assigned", "activated", "sent", "starting",
                                                     "running", "finished"]
    with pytest.raises(WmsError) as late:
        client.heartbeat(job_id, "p1", "running")
    assert late.value.status == 409


def test_memory_failure_rebrokers_to_jinr(client: WmsClient, agent: Agent) -> None:
    _, (job_id,) = client.submit_task("muon", "production", "production", specs(1, memory_mb=300))
    settle(agent)
    first = client.job(job_id)
    assert first["site"] != "JINR" or first["memory_mb"] == 300
    pilot = client.get_job("p1", first["site"], first["queue"], 1, 300 if first["site"] != "JINR" else 1600, 3600)
    assert pilot is not None
    after = client.finish(job_id, "p1", FinishReport(state="failed", error_code=1235, error_diag="RSS 350 MB"))
    assert (after["state"], after["attempt"], after["memory_mb"]) == ("defined", 2, 600)
    settle(agent)
    second = client.job(job_id)
    assert (second["state"], second["site"], second["output_rse"]) == ("activated", "JINR", "JINR_DISK")
    assert "CNAF: 600 MB > 1 x 300 MB" in second["broker_reason"]
    pilot = client.get_job("p2", "JINR", "JINR", 1, 1600, 3600)
    assert pilot is not None
    assert pilot.attempt == 2
    after = client.finish(job_id, "p2", FinishReport(state="failed", error_class="memory"))
    assert (after["state"], after["attempt"], after["memory_mb"]) == ("defined", 3, 1200)
    settle(agent)
    assert client.job(job_id)["site"] == "JINR"
    assert client.get_job("p3", "JINR", "JINR", 1, 1600, 3600) is not None
    last = client.finish(job_id, "p3", FinishReport(state="failed", error_code=1235))
    assert (last["state"], last["attempt"]) == ("failed", 3)
    assert "was the last" in last["history"][-1]["reason"]


def test_unbrokerable_job_fails_with_reason(client: WmsClient, agent: Agent) -> None:
    _, (job_id,) = client.submit_task("huge", "user", "alice", specs(1, memory_mb=50000))
    settle(agent)
    job = client.job(job_id)
    assert job["state"] == "failed"
    assert "no queue fits" in job["error_diag"]


def test_a_transient_failure_is_retried_at_another_site(client: WmsClient, agent: Agent) -> None:
    _, (job_id,) = client.submit_task("flaky", "production", "production", specs(1))
    settle(agent)
    first = client.job(job_id)
    assert client.get_job("p1", first["site"], first["queue"], 1, 400, 3600) is not None
    after = client.finish(job_id, "p1", FinishReport(state="failed", exit_code=3, error_code=1305, error_diag=(
        "the payload exited with code 3: juno-payload cal: error: no conditions endpoint answered")))
    assert (after["state"], after["attempt"], after["avoid_queues"]) == ("defined", 2, [first["queue"]])
    assert (after["error_code"], after["error_class"]) == (1305, "service")  # the last error stays visible
    assert "(service, transient (rule 4))" in after["history"][-2]["reason"]
    settle(agent)
    second = client.job(job_id)
    assert second["state"] == "activated"
    assert second["queue"] != first["queue"]
    assert f"failed before at {first['queue']}: avoided" in second["broker_reason"]


def test_a_transient_failure_of_a_pinned_job_is_retried_at_its_site(client: WmsClient, agent: Agent) -> None:
    """A job pinned to one site has nowhere else to go: it is activated there again at once, not sent back to
    brokerage (which only a running agent would pick up)."""
    _, (job_id,) = client.submit_task("flaky-pinned", "user", "alice", specs(1, site="CNAF"))
    settle(agent)
    assert client.get_job("p1", "CNAF", "CNAF", 1, 400, 3600) is not None
    after = client.finish(job_id, "p1", FinishReport(state="failed", exit_code=3, error_code=1305, error_diag=(
        "the payload exited with code 3: juno-payload cal: error: no conditions endpoint answered")))
    assert (after["state"], after["attempt"], after["queue"]) == ("activated", 2, "CNAF")
    assert after["history"][-1]["reason"].endswith("again at CNAF (pinned there)")
    again = client.get_job("p2", "CNAF", "CNAF", 1, 400, 3600)
    assert again is not None
    assert again.job_id == job_id


def test_a_deterministic_failure_is_tried_once(client: WmsClient, agent: Agent) -> None:
    """A user's typo costs one attempt per job, not max_attempts; the reasons group into one line."""
    task_id, ids = client.submit_task("typo", "user", "alice", specs(3, site="IHEP"))
    settle(agent)
    for n in range(3):
        got = client.get_job(f"p{n}", "IHEP", "IHEP", 1, 400, 3600)
        assert got is not None
        client.finish(got.job_id, f"p{n}", FinishReport(state="failed", exit_code=2, error_code=1305, error_diag=(
            f"the payload exited with code 2: juno-payload detsim: error: gun --nuclear: no such option (job "
            f"{got.job_id}, /work/job-{got.job_id}-1)")))
    settle(agent)
    jobs = client.jobs(task_id=task_id)
    assert {(j["state"], j["attempt"], j["error_class"]) for j in jobs} == {("failed", 1, "usage")}
    assert all(j["max_attempts"] == 3 for j in jobs)
    assert "(usage, deterministic (rule 1))" in client.job(ids[0])["history"][-2]["reason"]
    assert "rule 3 says no_retry" in client.job(ids[0])["history"][-1]["reason"]
    (reason,) = group(jobs)
    assert (reason.error_class, reason.count) == ("usage", 3)
    assert reason.message.endswith("gun --nuclear: no such option (job N, <path>)")


def test_a_release_goes_only_where_it_is_installed(client: WmsClient, agent: Agent) -> None:
    """J23.1.0 is at IHEP and CNAF only (topology.yaml); a release no site has is refused with those that exist."""
    _, ids = client.submit_task("rel", "user", "alice", specs(6, release="J23.1.0"))
    settle(agent)
    jobs = [client.job(i) for i in ids]
    assert {j["queue"] for j in jobs} == {"IHEP", "CNAF"}  # least loaded first: both get some
    assert all("JINR: no release J23.1.0" in j["broker_reason"] for j in jobs)
    with pytest.raises(WmsError) as err:
        client.submit_task("norel", "user", "alice", specs(1, release="J99.0.0"))
    assert err.value.status == 400
    assert "job 'j0': release 'J99.0.0' is installed at no site; the releases are J20v1r0-Pre2 (CNAF, IHEP, " \
           "IN2P3, JINR), J23.1.0 (CNAF, IHEP), " in err.value.detail
    assert "norel" not in {t["name"] for t in client.tasks()}
    with pytest.raises(WmsError, match=r"release 'J99\.0\.0' is installed at no site"):
        client.add_jobs(client.tasks()[0]["task_id"], specs(1, key="more", release="J99.0.0"))
    queues = {q["queue"]: q for q in client.queues()}
    assert "J23.1.0" in queues["CNAF"]["releases"]


def test_lease_expiry_requeues_as_lost(client: WmsClient, agent: Agent) -> None:
    client.submit_task("lost", "production", "production", specs(2, site="IHEP", max_attempts=2))
    job_id = _run_one(client, agent)
    other = _run_one(client, agent, pilot="p2")
    expired, deadline = 0, time.monotonic() + 120
    while client.job(job_id)["attempt"] == 1:  # until the agent finds p1's lease (3 s) run out, however long
        assert time.monotonic() < deadline, f"p1's lease never expired: {client.job(job_id)}"
        assert client.heartbeat(other, "p2", "running") == "continue"  # renews p2's lease only, before each cycle
        expired += agent.run_once().expired
        time.sleep(0.2)
    assert expired == 1  # p1's job, never p2's
    job = client.job(job_id)
    assert (job["state"], job["attempt"], job["error_code"], job["error_class"]) == ("activated", 2, 1201, "lost")
    with pytest.raises(WmsError) as err:
        client.heartbeat(job_id, "p1", "running")
    assert err.value.status == 409
    assert client.job(other)["state"] == "running"
    again = client.get_job("p3", "IHEP", "IHEP", 1, 400, 3600)
    assert again is not None
    assert (again.job_id, again.attempt) == (job_id, 2)
    deadline = time.monotonic() + 120
    while client.job(job_id)["state"] != "failed":  # p3 is silent too: its lease runs out in turn
        assert time.monotonic() < deadline, f"p3's lease never expired: {client.job(job_id)}"
        agent.run_once()
        time.sleep(0.2)
    final = client.job(job_id)
    assert (final["state"], final["attempt"], final["error_code"]) == ("failed", 2, 1201)  # max_attempts used up


def test_a_job_whose_pilot_is_lost_is_retried_at_another_site(client: WmsClient, agent: Agent) -> None:
    _, (job_id,) = client.submit_task("lost-free", "production", "production", specs(1))
    settle(agent)
    first = client.job(job_id)
    assert client.get_job("p1", first["site"], first["queue"], 1, 400, 3600) is not None
    deadline = time.monotonic() + 120
    while client.job(job_id)["attempt"] == 1:  # p1 goes silent: its lease (3 s) runs out
        assert time.monotonic() < deadline, f"p1's lease never expired: {client.job(job_id)}"
        agent.run_once()
        time.sleep(0.2)
    settle(agent)
    second = client.job(job_id)
    assert (second["state"], second["attempt"], second["error_class"]) == ("activated", 2, "lost")
    assert second["queue"] != first["queue"]
    assert f"failed before at {first['queue']}: avoided" in second["broker_reason"]


def test_two_agents_broker_each_job_once(client: WmsClient, config: Path) -> None:
    task_id, _ = client.submit_task("agents", "production", "production", specs(3000))
    with agent_for(config) as a1, agent_for(config) as a2:
        threads = [threading.Thread(target=settle, args=(a,)) for a in (a1, a2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert client.task(task_id)["jobs_by_state"] == {"activated": 3000}
    with psycopg.connect(client_db(config)) as conn:
        twice = conn.execute("""SELECT count(*) FROM (SELECT job_id FROM wms.job_history WHERE state = 'assigned'
                                GROUP BY job_id HAVING count(*) > 1) AS t""").fetchone()
    assert twice == (0,)


def test_kill_job_and_task(client: WmsClient, agent: Agent) -> None:
    task_id, (queued, running, other) = client.submit_task("doomed", "user", "alice", specs(3, site="IHEP"))
    settle(agent)
    got = client.get_job("p1", "IHEP", "IHEP", 1, 400, 3600)
    assert got is not None
    assert got.job_id == queued  # by job id at equal priority
    running, queued = queued, running
    assert client.heartbeat(running, "p1", "running") == "continue"
    assert client.kill_job(queued)["state"] == "cancelled"
    killed = client.kill_task(task_id)
    assert killed["killed"] is not None
    assert client.job(other)["state"] == "cancelled"
    assert client.job(running)["state"] == "running"
    assert client.heartbeat(running, "p1", "running") == "kill"
    final = client.finish(running, "p1", FinishReport(state="failed", error_code=1144))
    assert final["state"] == "cancelled"
    with pytest.raises(WmsError) as err:
        client.kill_job(running)
    assert err.value.status == 409
    with pytest.raises(WmsError) as closed:
        client.add_jobs(task_id, [JobSpec(key="more", transformation="rec")])
    assert closed.value.status == 409


def test_reassign_and_retry(client: WmsClient, agent: Agent) -> None:
    _, (job_id, busy) = client.submit_task("moves", "user", "alice", specs(2, site="IHEP"))
    settle(agent)
    moved = client.reassign_job(job_id, "MSU")
    assert (moved["state"], moved["pinned_site"], moved["site"]) == ("defined", "MSU", None)
    settle(agent)
    assert client.job(job_id)["site"] == "MSU"
    with pytest.raises(WmsError) as bad:
        client.reassign_job(job_id, "ATLANTIS")
    assert bad.value.status == 400
    assert "not a queue" in bad.value.detail
    assert client.get_job("p1", "IHEP", "IHEP", 1, 400, 3600) is not None
    with pytest.raises(WmsError) as leased:
        client.reassign_job(busy, None)
    assert leased.value.status == 409
    with pytest.raises(WmsError) as early:
        client.retry_job(busy)
    assert early.value.status == 409
    client.finish(busy, "p1", FinishReport(state="failed", error_code=1144))
    assert client.job(busy)["state"] == "failed"  # killed: no_retry
    again = client.retry_job(busy)
    assert (again["state"], again["attempt"], again["error_code"]) == ("defined", 2, None)
    settle(agent)
    assert client.job(busy)["state"] == "activated"


def test_restart_loses_nothing(client: WmsClient, agent: Agent, config: Path) -> None:
    with Server(config, workers=1) as own:
        c = WmsClient(own.url)
        task_id, job_ids = c.submit_task("durable", "production", "production", specs(50, site="IHEP"))
        settle(agent)
        job = c.get_job("p1", "IHEP", "IHEP", 1, 400, 3600)
        assert job is not None
        c.heartbeat(job.job_id, "p1", "running")
        before = c.task(task_id), c.job(job.job_id)
    with Server(config, workers=1, port=own.port) as restarted:
        assert restarted.url == c.url
        assert c.task(task_id) == before[0]
        assert c.job(job.job_id)["history"] == before[1]["history"]
        assert c.heartbeat(job.job_id, "p1", "holding") == "continue"
        assert c.finish(job.job_id, "p1", FinishReport(state="finished"))["state"] == "finished"
        assert len(c.jobs(task_id=task_id, limit=1000)) == len(job_ids)
    c.close()


BAD = [
    ("POST", "/v1/tasks", b"{not json", 400, "not valid JSON"),
    ("POST", "/v1/tasks", {"name": "t", "kind": "user", "owner": "alice", "jobs": [], "colour": 1}, 422,
     "body.colour: Extra inputs are not permitted"),
    ("POST", "/v1/tasks", {"name": "t", "kind": "batch", "owner": "alice"}, 422, "body.kind"),
    ("POST", "/v1/tasks", {"name": "t", "kind": "user", "owner": "alice",
                           "jobs": [{"key": "a", "transformation": "rec", "cores": -2}]}, 422,
     "body.jobs.0.cores: Input should be greater than or equal to 1"),
    ("POST", "/v1/tasks", {"name": "t", "kind": "user", "owner": "alice",
                           "jobs": [{"key": "a", "transformation": "rec", "site": "ATLANTIS"}]}, 400, "not a queue"),
    ("GET", "/v1/jobs?state=sleeping", None, 422, "query.state"),
    ("GET", "/v1/jobs?limit=0", None, 422, "query.limit"),
    ("GET", "/v1/jobs/424242", None, 404, "job 424242 does not exist"),
    ("GET", "/v1/jobs/abc", None, 422, "path.job_id"),
    ("GET", "/v1/tasks/424242", None, 404, "task 424242 does not exist"),
    ("POST", "/v1/jobs/424242/kill", None, 404, "does not exist"),
    ("POST", "/v1/pilot/getjob", {"pilot_id": "p", "site": "IHEP", "queue": "IHEP", "cores": 0, "memory_mb": 1,
                                  "walltime_s": 1}, 422, "body.cores"),
    ("POST", "/v1/pilot/getjob", {"pilot_id": "p", "site": "IHEP"}, 422, "body.queue: Field required"),
    ("POST", "/v1/pilot/jobs/424242/heartbeat", {"pilot_id": "p", "state": "running"}, 404, "does not exist"),
    ("POST", "/v1/pilot/jobs/1/heartbeat", {"pilot_id": "p", "state": "dancing"}, 422, "body.state"),
    ("POST", "/v1/pilot/jobs/1/finish", {"pilot_id": "p", "state": "failed", "error_code": 7}, 422,
     "error_code 7 is not one of"),
    ("GET", "/v1/nothing", None, 404, "Not Found"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "detail"), BAD, ids=[f"{b[3]}-{b[4][:30]}" for b in BAD])
def test_bad_requests_say_why(client: WmsClient, method: str, path: str, body: object, status: int,
                              detail: str) -> None:
    kwargs = {"data": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else {
        "json": body}
    reply = requests.request(method, client.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]
    assert reply.status_code == status, reply.text
    assert detail in reply.json()["detail"]


def test_wrong_pilot_finish_is_409(client: WmsClient, agent: Agent) -> None:
    client.submit_task("mine", "user", "alice", specs(1, site="IHEP"))
    job_id = _run_one(client, agent)
    with pytest.raises(WmsError) as err:
        client.finish(job_id, "other", FinishReport(state="finished"))
    assert err.value.status == 409


def test_openapi_and_queues(client: WmsClient) -> None:
    spec = requests.get(client.url + "/openapi.json", timeout=30).json()
    assert "/v1/pilot/getjob" in spec["paths"]
    assert "/v1/tasks/{task_id}/jobs" in spec["paths"]
    queues = {q["queue"]: q for q in client.queues()}
    assert queues["JINR"]["memory_mb_per_core"] == 1600
    assert queues["SYSU-CLUSTER"]["rse"] == "CNAF_DISK"
    assert client.health()["status"] == "ok"
