"""The transfer service against hostile callers, on a real grid: its real issuer, the grid's PostgreSQL and the
service's own HTTPS API. Each refusal is checked twice: the answer (401 or 403, with the reason), and that
nothing changed in the service's tables. Forged tokens are signed with the grid's own key where a forgery only
breaks one claim, and with keys the issuer never published otherwise."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests

from juno_dcs.grid import database, issuer
from juno_dcs.grid.home import GridHome
from juno_dcs.issuer.app import load_key
from juno_dcs.tokens.sealed import Sealer
from juno_dcs.transfer.keeper import Kept, expires_at
from tests.conftest import Grid
from tests.integration.transfer_helpers import (
    CA,
    FTS_AUDIENCE,
    STORAGE_AUDIENCE,
    fts_url,
    https,
    put,
    submit,
    wait_final,
)
from tests.tokens import LocalIssuer, hostile_tokens

pytestmark = pytest.mark.grid


@pytest.fixture(scope="module")
def forger(grid: Grid) -> LocalIssuer:
    """Signs with the grid issuer's real key, for tokens that break one claim only."""
    issuer_url = f"https://127.0.0.1:{grid.base_port + 33}/"
    return LocalIssuer(issuer=issuer_url, key=load_key(grid.home / "secrets" / "issuer-key.pem"))


@pytest.fixture(scope="module")
def ses(grid: Grid) -> dict[str, str]:
    """davs://localhost:PORT of every RSE, from one `status` (each takes seconds)."""
    storage: dict[str, str] = grid.status()["storage"]  # type: ignore[assignment]
    return {rse: url.rstrip("/") for rse, url in storage.items()}


@pytest.fixture(scope="module")
def db(grid: Grid) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database.grid_url(GridHome(grid.home).load_state()), autocommit=True) as conn:
        yield conn


def snapshot(db: psycopg.Connection[Any]) -> list[Any]:
    """Every job and file of the service, as a comparable value; but Rucio's, whose conveyor goes on submitting
    the grid's own transfers meanwhile (the forged tokens never name `rucio`)."""
    jobs = db.execute("SELECT job_id, job_state, priority, user_dn, canceled FROM fts.jobs "
                      "WHERE user_dn <> 'rucio' ORDER BY job_id").fetchall()
    files = db.execute("SELECT f.file_id, f.file_state FROM fts.files f JOIN fts.jobs j USING (job_id) "
                       "WHERE j.user_dn <> 'rucio' ORDER BY f.file_id").fetchall()
    return [jobs, files]


def call(grid: Grid, method: str, path: str, token: str | None, body: Any = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.request(method, f"{fts_url(grid)}{path}", headers=headers, verify=CA, timeout=30,
                            data=None if body is None else json.dumps(body))


def a_job(grid: Grid, ses: dict[str, str], account: str) -> str:
    """A job of `account` (the tests that need it to stay SUBMITTED hold the worker still)."""
    src = f"{ses['IHEP_DISK']}/tokens/{uuid.uuid4().hex}-missing"
    dst = f"{ses['CNAF_DISK']}/tokens/{uuid.uuid4().hex}"
    return submit(grid, [{"sources": [src], "destinations": [dst]}], account=account, retry=3, retry_delay=3600)


def submission(ses: dict[str, str]) -> dict[str, Any]:
    return {"files": [{"sources": [f"{ses['IHEP_DISK']}/tokens/x"],
                       "destinations": [f"{ses['CNAF_DISK']}/tokens/y"]}], "params": {}}


def test_forged_and_unfit_tokens_are_refused_and_change_nothing(grid: Grid, forger: LocalIssuer, ses: dict[str, str],
                                                                db: psycopg.Connection[Any]) -> None:
    public = requests.get(f"{forger.issuer}jwks", verify=CA, timeout=10).json()
    cases = hostile_tokens(forger, forger.issuer, FTS_AUDIENCE, "root", "fts", public, ["/juno", "/juno/admin"])
    cases["a real token for the storage, not for this service"] = grid.token("root", "localhost", "fts")
    body = submission(ses)
    with grid.stopped("fts-worker"):  # nothing moves but what the calls might move
        victim = a_job(grid, ses, "rawdata")
        before = snapshot(db)
        for name, token in cases.items():
            for method, path, sent in (("POST", "/jobs", body), ("GET", "/jobs", None),
                                       ("GET", f"/jobs/{victim}", None), ("DELETE", f"/jobs/{victim}", None),
                                       ("POST", f"/jobs/{victim}", {"params": {"priority": 5}})):
                reply = call(grid, method, path, token, sent)
                assert reply.status_code == 401, (name, method, path, reply.text)
                assert reply.json()["status"] == "401", (name, reply.text)
                assert reply.json()["message"], (name, reply.text)
        assert snapshot(db) == before


def test_a_job_belongs_to_its_submitter(grid: Grid, ses: dict[str, str], db: psycopg.Connection[Any]) -> None:
    with grid.stopped("fts-worker"):
        owner_and_others(grid, ses, db)


def owner_and_others(grid: Grid, ses: dict[str, str], db: psycopg.Connection[Any]) -> None:
    job_id = a_job(grid, ses, "rawdata")
    owner = db.execute("SELECT user_dn FROM fts.jobs WHERE job_id = %s", (job_id,)).fetchone()
    assert owner == ("rawdata",)
    alice = grid.token("alice", FTS_AUDIENCE)  # a member, without the fts scope
    before = snapshot(db)
    assert call(grid, "DELETE", f"/jobs/{job_id}", alice).status_code == 403
    assert call(grid, "POST", f"/jobs/{job_id}", alice, {"params": {"priority": 5}}).status_code == 403
    reply = call(grid, "GET", f"/jobs/{job_id}", alice)
    assert reply.status_code == 403
    assert "another account" in reply.json()["message"]
    assert call(grid, "GET", f"/jobs/{job_id}/files", alice).status_code == 403
    assert call(grid, "GET", "/jobs?user_dn=rawdata", alice).status_code == 403
    assert job_id not in {j["job_id"] for j in call(grid, "GET", "/jobs?limit=10000", alice).json()}
    assert snapshot(db) == before
    # the owner and an admin may; a member may not submit at all (no fts scope)
    rawdata = grid.token("rawdata", FTS_AUDIENCE, "fts")
    assert job_id in {j["job_id"] for j in call(grid, "GET", "/jobs?limit=10000", rawdata).json()}
    assert call(grid, "POST", f"/jobs/{job_id}", rawdata, {"params": {"priority": 4}}).status_code == 200
    refused = call(grid, "POST", "/jobs", alice, submission(ses))
    assert refused.status_code == 403
    assert "scope 'fts'" in refused.json()["message"]
    root = grid.token("root", FTS_AUDIENCE, "fts")
    assert call(grid, "DELETE", f"/jobs/{job_id}", root).status_code == 200
    assert db.execute("SELECT job_state FROM fts.jobs WHERE job_id = %s", (job_id,)).fetchone() == ("CANCELED",)


def test_a_cancel_of_several_jobs_cancels_only_the_callers(grid: Grid, ses: dict[str, str],
                                                           db: psycopg.Connection[Any]) -> None:
    with grid.stopped("fts-worker"):
        mine, theirs = a_job(grid, ses, "rawdata"), a_job(grid, ses, "root")
        reply = call(grid, "DELETE", f"/jobs/{mine},{theirs}", grid.token("rawdata", FTS_AUDIENCE, "fts"))
        assert reply.status_code == 207
        answers = {j["job_id"]: j["http_status"] for j in reply.json()}
        assert answers == {mine: "200 Ok", theirs: "403 Forbidden"}
        states = dict(db.execute("SELECT job_id, job_state FROM fts.jobs WHERE job_id = ANY(%s)",
                                 ([mine, theirs],)).fetchall())
    assert states == {mine: "CANCELED", theirs: "SUBMITTED"}


def test_tokens_handed_to_the_service_are_sealed_and_dropped_when_done(grid: Grid, ses: dict[str, str],
                                                                      db: psycopg.Connection[Any]) -> None:
    data = os.urandom(4096)
    src = f"{ses['IHEP_DISK']}/tokens/{uuid.uuid4().hex}"
    put(grid, src, data)
    source_token = grid.token("root", "localhost", "storage.read:/")
    dest_token = grid.token("root", "localhost", "storage.modify:/ storage.read:/")
    job_id = submit(grid, [{"sources": [src], "destinations": [f"{ses['JINR_DISK']}/tokens/{uuid.uuid4().hex}"],
                            "source_tokens": [source_token], "destination_tokens": [dest_token]}])
    assert wait_final(grid, job_id)["job_state"] == "FINISHED"
    stored = db.execute("SELECT source_token, dest_token FROM fts.files WHERE job_id = %s", (job_id,)).fetchone()
    assert stored == (None, None)  # a finished file keeps no token
    with grid.stopped("fts-worker"):  # a waiting job keeps its tokens, sealed
        sealed = submit(grid, [{"sources": [f"{src}-missing"], "destinations": [f"{src}-nowhere"],
                                "source_tokens": [source_token], "destination_tokens": [dest_token]}])
        row = db.execute("SELECT source_token, dest_token FROM fts.files WHERE job_id = %s", (sealed,)).fetchone()
    assert row is not None
    assert all(v.startswith("sealed:") for v in row)
    dump = json.dumps(db.execute("SELECT * FROM fts.files").fetchall(), default=str)
    assert source_token not in dump
    assert dest_token not in dump
    logs = "".join(p.read_text(errors="replace") for p in (grid.home / "logs").glob("fts-*.log"))
    assert source_token not in logs
    assert dest_token not in logs


def _short_token(grid: Grid, account: str, scope: str, lifetime: int) -> str:
    """A token of `account` for the storage that expires after `lifetime` seconds (the issuer's `lifetime`)."""
    home = GridHome(grid.home)
    state = home.load_state()
    creds = issuer.credentials(issuer.layout(home, state), state, account)
    reply = requests.post(f"{creds.issuer}token", auth=(creds.client_id, creds.client_secret), verify=CA, timeout=30,
                          data={"grant_type": "client_credentials", "audience": STORAGE_AUDIENCE, "scope": scope,
                                "lifetime": str(lifetime)})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def test_tokens_that_run_out_while_the_job_waits_are_refreshed_by_the_service(grid: Grid, ses: dict[str, str],
                                                                              db: psycopg.Connection[Any]) -> None:
    """alice's tokens, good for 6 s, are handed over with a job by the conveyor's account; the job waits longer
    than that (the workers held). The service exchanged them at submission, so the worker refreshes them and
    the copy runs with alice's rights; the storage refuses the tokens she handed over by then."""
    data = os.urandom(8192)
    src = f"{ses['IHEP_DISK']}/user/alice/refresh/{uuid.uuid4().hex}"
    put(grid, src, data)
    name = f"/user/alice/refresh/{uuid.uuid4().hex}"
    area = "/user/alice"
    read = _short_token(grid, "alice", f"storage.read:{area}", 6)
    # as Rucio asks for a destination: a stat before the copy needs storage.read too
    write = _short_token(grid, "alice", f"storage.read:{area} storage.create:{area} storage.modify:{area}", 6)
    with grid.stopped("fts-worker"):
        job_id = submit(grid, [{"sources": [src], "destinations": [ses["JINR_DISK"] + name],
                                "source_tokens": [read], "destination_tokens": [write]}])
        row = db.execute("SELECT source_token, dest_token FROM fts.files WHERE job_id = %s", (job_id,)).fetchone()
        sealer = Sealer(grid.home / "secrets" / "fts-token-key")
        kept = [Kept.loads(str(sealer.open(v))) for v in row]
        assert [k.access for k in kept] == [read, write]
        assert all(k.refresh for k in kept), "the service holds a refresh token for each"
        time.sleep(max(0.0, max(expires_at(t) or 0 for t in (read, write)) - time.time()) + 1.5)
        refused = requests.put(https(ses["JINR_DISK"] + name + "-direct"), data=b"x", verify=CA, timeout=30,
                               headers={"Authorization": f"Bearer {write}"})
        assert refused.status_code in (401, 403), refused.status_code
    final = wait_final(grid, job_id)
    assert final["job_state"] == "FINISHED", final
    assert (grid.rse_dir("JINR_DISK") / name.lstrip("/")).read_bytes() == data
    assert not (grid.rse_dir("JINR_DISK") / (name.lstrip("/") + "-direct")).exists()
    logs = "".join(p.read_text(errors="replace") for p in (grid.home / "logs").glob("issuer*.log"))
    assert "token-exchange client=fts sub=alice" in logs
    assert "granted refresh_token client=fts sub=alice" in logs
