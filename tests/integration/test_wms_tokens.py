"""The dispatcher checks tokens: a hostile suite against `juno-wms serve` configured exactly as the grid's (the
session grid's real issuer, its CA, audience juno-wms), on a throwaway database so that "nothing changed" is a
comparison of every row. Each refusal is asserted with its status, its message and the unchanged tables; valid
tokens come from the grid's issuer, forged ones from tests/integration/forged_tokens.py. Then the grid's own
dispatcher: open health, closed API, and the clients' error without a token."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from juno_dcs.wms.agent import Agent
from juno_dcs.wms.client import WmsClient
from juno_dcs.wms.credentials import PILOT_SCOPES, READ_SCOPES
from juno_dcs.wms.models import JobSpec
from tests.conftest import BIN, Grid
from tests.integration.forged_tokens import Forger
from tests.integration.wms_helpers import (
    Server,
    agent_for,
    grid_auth,
    pilot_client,
    service_token,
    throwaway_database,
    user_client,
    write_config,
)

TABLES = ("wms.tasks", "wms.jobs", "wms.job_history", "wms.pilots")
AUDIENCE = "juno-wms"


@dataclass
class Stack:
    url: str
    database: str
    config: Path
    log: Path
    grid: Grid
    forger: Forger
    tokens: dict[str, str]

    def token(self, account: str) -> str:
        """`account`'s real token from the grid's issuer, for the dispatcher (one per account and module)."""
        if account not in self.tokens:
            self.tokens[account] = self.grid.token(account, AUDIENCE)
        return self.tokens[account]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        with psycopg.connect(self.database) as conn:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}  # noqa: S608

    def call(self, method: str, path: str, token: str | None, body: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url + path, json=body, headers=sent, timeout=30)


@pytest.fixture(scope="module")
def stack(grid: Grid, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("wms-tokens")
    with throwaway_database("wms_tokens") as url:
        config = write_config(directory, url, lease_s=60, auth=grid_auth(grid.home))
        with Server(config, workers=1) as server:
            yield Stack(server.url, url, config, server.log, grid, Forger.of(grid.home), {})


@pytest.fixture(scope="module")
def agent(stack: Stack) -> Iterator[Agent]:
    with agent_for(stack.config) as a:
        yield a


def task_body(name: str, owner: str | None = None, kind: str = "user", jobs: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "kind": kind, "jobs": [
        {"key": f"j{i}", "transformation": "exec", "args": ["/bin/true"], "memory_mb": 100} for i in range(jobs)]}
    if owner is not None:
        body["owner"] = owner
    return body


def unique(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns()}"


@pytest.fixture(scope="module")
def bobs(stack: Stack, agent: Agent) -> dict[str, Any]:
    """bob's task with two jobs, brokered and waiting for a pilot: what the hostile calls aim at."""
    bob = user_client(stack.url, stack.grid.home, "bob")
    task_id, job_ids = bob.submit_task(unique("bobs"), "user", None, [
        JobSpec(key=f"b{i}", transformation="exec", args=["/bin/true"], memory_mb=100) for i in range(2)])
    while agent.run_once().full:
        pass
    job = bob.job(job_ids[0])
    assert job["state"] == "activated", job
    return {"task": task_id, "job": job_ids[0], "queue": job["queue"], "site": job["site"]}


def refused(stack: Stack, status: int, words: str, method: str, path: str, token: str | None, body: Any = None,
            headers: dict[str, str] | None = None) -> None:
    """The call is refused with `status` and a message containing `words`, and no row of the dispatcher changed."""
    before = stack.snapshot()
    reply = stack.call(method, path, token, body, headers)
    assert reply.status_code == status, (reply.status_code, reply.text)
    detail = reply.json()["detail"]
    assert words in detail, detail
    if status == 401:
        assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert stack.snapshot() == before, f"{method} {path} was refused ({detail}) but changed the dispatcher's tables"


# --- tokens that are not valid: 401 wherever they are sent
def getjob_body(bobs: dict[str, Any]) -> dict[str, Any]:
    return {"pilot_id": "hostile", "site": bobs["site"], "queue": bobs["queue"], "cores": 8, "memory_mb": 100000,
            "walltime_s": 100000}


BAD_TOKENS: dict[str, tuple[Callable[[Stack], str | None], str]] = {
    "no token": (lambda s: None, "no credential"),
    "not a JWT": (lambda s: "not-a-token", "not a signed JWT"),
    "expired": (lambda s: s.forger.signed_by_issuer(s.forger.claims(
        "alice", exp=int(time.time()) - 3600, iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200)),
        "expired"),
    "not yet valid": (lambda s: s.forger.signed_by_issuer(s.forger.claims(
        "alice", nbf=int(time.time()) + 3600, exp=int(time.time()) + 7200)), "not valid yet"),
    "wrong audience": (lambda s: s.grid.token("alice", "rucio"), "not for juno-wms"),
    "wrong issuer": (lambda s: s.forger.signed_by_issuer(s.forger.claims(
        "alice", iss="https://iam.example.org/")), "issued by 'https://iam.example.org/'"),
    "no subject": (lambda s: s.forger.signed_by_issuer(s.forger.claims("alice", sub=None)), "no 'sub' claim"),
    "another key, the issuer's kid": (lambda s: s.forger.signed_by_another_key(s.forger.claims("alice")),
                                      "signature does not verify"),
    "another key, its own kid": (lambda s: s.forger.signed_by_another_key(s.forger.claims("alice"), same_kid=False),
                                 "signature does not verify"),
    "alg none": (lambda s: s.forger.unsigned(s.forger.claims("alice")), "'none' is not accepted"),
    "HS256 with the issuer's public key": (lambda s: s.forger.hs256_with_public_key(s.forger.claims("alice")),
                                           "'HS256' is not accepted"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_a_bad_token_submits_nothing(stack: Stack, bobs: dict[str, Any], case: str) -> None:
    make, words = BAD_TOKENS[case]
    refused(stack, 401, words, "POST", "/v1/tasks", make(stack), task_body(unique("bad"), "alice"))


@pytest.mark.parametrize("case", ["no token", "expired", "wrong audience", "another key, the issuer's kid",
                                  "alg none", "HS256 with the issuer's public key"])
def test_a_bad_pilot_token_takes_no_job(stack: Stack, bobs: dict[str, Any], case: str) -> None:
    make, words = BAD_TOKENS[case]
    claims = stack.forger.claims("pilot", scope="compute.read compute.modify", groups=("/juno/pilots",))
    token = {"expired": stack.forger.signed_by_issuer({**claims, "exp": int(time.time()) - 3600}),
             "alg none": stack.forger.unsigned(claims)}.get(case) or make(stack)
    refused(stack, 401, words, "POST", "/v1/pilot/getjob", token, getjob_body(bobs))


def test_not_bearer_is_refused(stack: Stack, bobs: dict[str, Any]) -> None:
    refused(stack, 401, "not 'Bearer <token>'", "POST", f"/v1/tasks/{bobs['task']}/kill", None,
            headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/tasks"), ("GET", "/v1/jobs"), ("GET", "/v1/queues"),
                                              ("GET", "/v1/pilots"), ("GET", "/v1/jobs/1")])
def test_reads_need_a_token_too(stack: Stack, method: str, path: str) -> None:
    refused(stack, 401, "no credential", method, path, None)


def test_health_and_the_api_description_stay_open(stack: Stack) -> None:
    assert stack.call("GET", "/v1/health", None).json()["status"] == "ok"
    assert "/v1/tasks" in stack.call("GET", "/openapi.json", None).json()["paths"]


# --- valid tokens, wrong caller: 403
def test_a_task_with_someone_elses_owner_is_refused(stack: Stack) -> None:
    refused(stack, 403, "cannot submit a task owned by 'bob'", "POST", "/v1/tasks", stack.token("alice"),
            task_body(unique("as-bob"), "bob"))


def test_a_pilot_token_cannot_submit_a_task(stack: Stack) -> None:
    pilot = service_token(stack.grid.home, "pilot", PILOT_SCOPES)  # the grid's real pilot client
    refused(stack, 403, "not for pilots", "POST", "/v1/tasks", pilot, task_body(unique("by-pilot")))
    refused(stack, 403, "not for pilots", "POST", "/v1/tasks", pilot, task_body(unique("by-pilot"), "pilot"))


def test_a_user_token_cannot_take_a_job_or_report_as_a_pilot(stack: Stack, bobs: dict[str, Any]) -> None:
    for account in ("alice", "bob", "root"):  # not even the job's owner, not even an admin
        refused(stack, 403, "for pilots", "POST", "/v1/pilot/getjob", stack.token(account), getjob_body(bobs))
    refused(stack, 403, "for pilots", "POST", f"/v1/pilot/jobs/{bobs['job']}/heartbeat", stack.token("bob"),
            {"pilot_id": "hostile", "state": "running"})
    refused(stack, 403, "for pilots", "POST", f"/v1/pilot/jobs/{bobs['job']}/finish", stack.token("bob"),
            {"pilot_id": "hostile", "state": "finished", "exit_code": 0})


def test_another_accounts_task_and_jobs_cannot_be_killed_or_changed(stack: Stack, bobs: dict[str, Any]) -> None:
    alice = stack.token("alice")
    refused(stack, 403, "belongs to 'bob'", "POST", f"/v1/tasks/{bobs['task']}/kill", alice)
    refused(stack, 403, "belongs to 'bob'", "POST", f"/v1/jobs/{bobs['job']}/kill", alice)
    refused(stack, 403, "belongs to 'bob'", "POST", f"/v1/jobs/{bobs['job']}/reassign", alice, {"site": "IHEP"})
    refused(stack, 403, "belongs to 'bob'", "POST", f"/v1/jobs/{bobs['job']}/retry", alice)
    refused(stack, 403, "belongs to 'bob'", "POST", f"/v1/tasks/{bobs['task']}/jobs", alice,
            {"jobs": [{"key": "sneaked", "transformation": "exec", "args": ["/bin/true"]}]})


def test_a_production_needs_the_production_group(stack: Stack) -> None:
    refused(stack, 403, "needs a token of the /juno/production group", "POST", "/v1/tasks", stack.token("alice"),
            task_body(unique("fake-prod"), kind="production"))


def test_each_action_needs_its_scope(stack: Stack, bobs: dict[str, Any]) -> None:
    read_only = stack.grid.token("bob", AUDIENCE, "compute.read")  # bob's own, from the issuer, narrowed
    refused(stack, 403, "needs a token with scope 'compute.create'", "POST", "/v1/tasks", read_only,
            task_body(unique("ro")))
    refused(stack, 403, "scope 'compute.cancel'", "POST", f"/v1/tasks/{bobs['task']}/kill", read_only)
    refused(stack, 403, "scope 'compute.modify'", "POST", f"/v1/jobs/{bobs['job']}/reassign", read_only, {})
    assert stack.call("GET", f"/v1/tasks/{bobs['task']}", read_only).status_code == 200


def test_others_tasks_and_jobs_are_not_shown(stack: Stack, bobs: dict[str, Any]) -> None:
    alice = stack.token("alice")
    refused(stack, 403, "belongs to 'bob'", "GET", f"/v1/tasks/{bobs['task']}", alice)
    refused(stack, 403, "belongs to 'bob'", "GET", f"/v1/jobs/{bobs['job']}", alice)
    assert all(t["owner"] == "alice" for t in stack.call("GET", "/v1/tasks", alice).json())
    assert bobs["job"] not in [j["job_id"] for j in stack.call("GET", "/v1/jobs", alice).json()]
    refused(stack, 403, "not for pilots", "GET", "/v1/tasks", service_token(stack.grid.home, "pilot", PILOT_SCOPES))
    # readers (the operators' dashboard) and admins see everyone's
    for reader in (service_token(stack.grid.home, "dashboard", READ_SCOPES), stack.token("root")):
        assert bobs["task"] in [t["task_id"] for t in stack.call("GET", "/v1/tasks", reader).json()]
        assert stack.call("GET", f"/v1/jobs/{bobs['job']}", reader).status_code == 200
    refused(stack, 403, "scope 'compute.cancel'", "POST", f"/v1/tasks/{bobs['task']}/kill",
            service_token(stack.grid.home, "dashboard", READ_SCOPES))


# --- what is allowed
def test_the_owner_is_the_tokens_subject(stack: Stack) -> None:
    alice = user_client(stack.url, stack.grid.home, "alice")
    first, _ = alice.submit_task(unique("mine"), "user", None, [])
    second, _ = alice.submit_task(unique("mine"), "user", "alice", [])
    assert alice.task(first)["owner"] == alice.task(second)["owner"] == "alice"
    production = user_client(stack.url, stack.grid.home, "production")
    prod_id, _ = production.submit_task(unique("prod"), "production", None, [])
    assert production.task(prod_id)["kind"] == "production"


def test_an_admin_may_kill_anyones_job_and_a_pilot_takes_jobs(stack: Stack, agent: Agent) -> None:
    bob = user_client(stack.url, stack.grid.home, "bob")
    task_id, job_ids = bob.submit_task(unique("bob-two"), "user", None, [
        JobSpec(key=f"k{i}", transformation="exec", args=["/bin/true"], memory_mb=100) for i in range(2)])
    while agent.run_once().full:
        pass
    root = user_client(stack.url, stack.grid.home, "root")
    assert root.kill_job(job_ids[0])["state"] == "cancelled"
    job = bob.job(job_ids[1])
    pilot = pilot_client(stack.url, stack.grid.home)
    taken = pilot.get_job("p1", job["site"], job["queue"], 8, 100000, 100000)
    assert taken is not None
    assert taken.owner == "bob"
    assert pilot.heartbeat(taken.job_id, "p1", "running") == "continue"
    assert bob.kill_task(task_id)["killed"] is not None  # the owner may


def test_no_token_reaches_the_log_or_the_tables(stack: Stack) -> None:
    """After the suite's calls (module order: this runs last), none of the tokens used is in the server's log or in
    any row of the dispatcher's tables."""
    used = [t for t in stack.tokens.values() if t]
    assert used
    text = stack.log.read_text(errors="replace")
    rows = repr(stack.snapshot())
    for token in used:
        signature = token.rsplit(".", 1)[-1]
        assert signature not in text
        assert signature not in rows


# --- the grid's own dispatcher and its command-line clients
def test_the_grids_dispatcher_checks_tokens(grid: Grid) -> None:
    url = grid.env()["JUNO_WMS_URL"]
    assert requests.get(f"{url}/v1/health", timeout=10).status_code == 200
    reply = requests.get(f"{url}/v1/queues", timeout=10)
    assert reply.status_code == 401
    assert "no credential" in reply.json()["detail"]
    queues = requests.get(f"{url}/v1/queues", headers=grid.bearer("alice", AUDIENCE), timeout=10)
    assert queues.status_code == 200
    assert queues.json()
    assert WmsClient(url, token=lambda: grid.token("alice", AUDIENCE)).tasks() is not None


def test_the_clients_say_how_to_get_a_token(grid: Grid, tmp_path: Path) -> None:
    env = {k: v for k, v in grid.env("alice").items() if not k.startswith("BEARER_TOKEN")}
    env["BEARER_TOKEN_FILE"] = str(tmp_path / "none")  # discovery looks there only, and finds nothing
    wms = subprocess.run([str(BIN / "juno-wms"), "jobs"], env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert wms.returncode == 2, wms.stderr
    assert 'eval "$(juno-dcs env --account NAME)"' in wms.stderr
    with_token = subprocess.run([str(BIN / "juno-wms"), "jobs"], env=grid.env("alice"), capture_output=True,
                                text=True, timeout=60, check=False)
    assert with_token.returncode == 0, with_token.stderr
