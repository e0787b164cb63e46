"""Storage elements authorize every request (issue 19, item 2): a hostile suite against the real grid.

Every case asserts the refusal (the SE's HTTP 401/403, gfal2's or Rucio's error) and that nothing changed: no
file appeared in the SE's directory, a file that was there is still there with its bytes, and Rucio's catalogue
still says what it said. Valid tokens come from the grid's issuer (Grid.token); forged ones from forged_tokens.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from juno_dcs.errors import PermissionDenied
from juno_rucio_policy.paths import path_for
from juno_rucio_policy.tokens import with_token
from tests.conftest import BIN, Grid
from tests.integration.forged_tokens import Forger
from tests.integration.juno_names import raw_file
from tests.integration.transfer_helpers import CA, STORAGE_AUDIENCE

RSES = ("IHEP_DISK", "IHEP_TAPE", "CNAF_DISK", "CNAF_TAPE", "JINR_DISK", "JINR_TAPE", "IN2P3_DISK", "IN2P3_TAPE",
        "MSU_DISK")
REFUSED = (401, 403)
ALICE_STORAGE = "storage.read:/ storage.create:/user/alice storage.modify:/user/alice"


@pytest.fixture(scope="module")
def ses(grid: Grid) -> dict[str, str]:
    """davs://localhost:PORT of every RSE (`status` once: it takes seconds)."""
    return {rse: str(url).rstrip("/") for rse, url in grid.status()["storage"].items()}  # type: ignore[attr-defined]


def _https(ses: dict[str, str], rse: str, path: str) -> str:
    return ses[rse].replace("davs://", "https://", 1) + path


def _root(ses: dict[str, str], rse: str, path: str) -> str:
    return ses[rse].replace("davs://", "root://", 1) + "/" + path


def _on_disk(grid: Grid, rse: str, path: str) -> Path:
    return grid.rse_dir(rse) / path.lstrip("/")


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _put(ses: dict[str, str], rse: str, path: str, data: bytes, token: str | None) -> requests.Response:
    return requests.put(_https(ses, rse, path), data=data, headers=_auth(token), verify=CA, timeout=30)


def _delete(ses: dict[str, str], rse: str, path: str, token: str | None) -> requests.Response:
    return requests.delete(_https(ses, rse, path), headers=_auth(token), verify=CA, timeout=30)


def _root_token(grid: Grid) -> str:
    return grid.token("root", STORAGE_AUDIENCE)


@pytest.fixture
def victim(grid: Grid, ses: dict[str, str]) -> Iterator[tuple[str, bytes]]:
    """A file at /user/alice/... on every SE, written with root's token; removed after the test."""
    path, data = f"/user/alice/se-tokens/{uuid.uuid4().hex}", os.urandom(2048)
    token = _root_token(grid)
    for rse in RSES:
        reply = _put(ses, rse, path, data, token)
        assert reply.status_code in (200, 201), (rse, reply.status_code, reply.text)
        assert _on_disk(grid, rse, path).read_bytes() == data
    yield path, data
    for rse in RSES:
        _delete(ses, rse, path, token)


def _gfal() -> Any:
    import gfal2

    os.environ.setdefault("X509_CERT_DIR", str(Path(CA).parent))
    ctx = gfal2.creat_context()
    ctx.set_opt_boolean("HTTP PLUGIN", "RETRIEVE_BEARER_TOKEN", False)
    return ctx


# --- no token: nothing is written, deleted or read, on any SE, over davs or root://


@pytest.mark.parametrize("rse", RSES)
def test_without_a_token_nothing_is_written_or_deleted(grid: Grid, ses: dict[str, str], rse: str,
                                                       victim: tuple[str, bytes], tmp_path: Path) -> None:
    import gfal2

    path, data = victim
    new = f"/user/alice/se-tokens/new-{uuid.uuid4().hex}"
    assert _put(ses, rse, new, b"intruder", None).status_code in REFUSED
    assert _delete(ses, rse, path, None).status_code in REFUSED
    local = tmp_path / "f"
    local.write_bytes(b"intruder")
    ctx = _gfal()
    params = ctx.transfer_parameters()
    with pytest.raises(gfal2.GError) as written:
        ctx.filecopy(params, local.as_uri(), _root(ses, rse, new))
    assert written.value.code in (errno.EACCES, errno.EPERM), written.value.message
    with pytest.raises(gfal2.GError) as deleted:
        ctx.unlink(_root(ses, rse, path))
    assert deleted.value.code in (errno.EACCES, errno.EPERM), deleted.value.message
    assert not _on_disk(grid, rse, new).exists()
    assert _on_disk(grid, rse, path).read_bytes() == data


def test_without_a_token_nothing_is_read(grid: Grid, ses: dict[str, str], victim: tuple[str, bytes],
                                         tmp_path: Path) -> None:
    import gfal2

    path, data = victim
    reply = requests.get(_https(ses, "IHEP_DISK", path), verify=CA, timeout=30)
    assert reply.status_code in REFUSED
    assert data not in reply.content
    ctx = _gfal()
    with pytest.raises(gfal2.GError) as read:
        ctx.filecopy(ctx.transfer_parameters(), _root(ses, "IHEP_DISK", path), (tmp_path / "copy").as_uri())
    assert read.value.code in (errno.EACCES, errno.EPERM), read.value.message
    assert not (tmp_path / "copy").exists() or (tmp_path / "copy").read_bytes() != data
    # the same reads with a member's token work: the refusals above are the missing token's
    alice = grid.token("alice", STORAGE_AUDIENCE)
    assert requests.get(_https(ses, "IHEP_DISK", path), headers=_auth(alice), verify=CA, timeout=30).content == data
    ctx.filecopy(ctx.transfer_parameters(), with_token(_root(ses, "IHEP_DISK", path), alice),
                 (tmp_path / "copy2").as_uri())
    assert (tmp_path / "copy2").read_bytes() == data


# --- tokens that are not valid


def _forged(forger: Forger, kind: str) -> str:
    def claims(**changes: Any) -> dict[str, Any]:
        return forger.claims("alice", ALICE_STORAGE, audience=STORAGE_AUDIENCE, **changes)

    now = int(time.time())
    if kind == "expired":
        return forger.signed_by_issuer(claims(exp=now - 120, iat=now - 720, nbf=now - 720))
    if kind == "not yet valid":
        return forger.signed_by_issuer(claims(nbf=now + 3600, iat=now + 3600, exp=now + 7200))
    if kind == "wrong issuer":
        return forger.signed_by_issuer(claims(iss="https://iam.example.org/"))
    if kind == "no audience":
        return forger.signed_by_issuer(claims(aud=None))
    if kind == "another key":
        return forger.signed_by_another_key(claims())
    if kind == "another key, its own kid":
        return forger.signed_by_another_key(claims(), same_kid=False)
    if kind == "alg none":
        return forger.unsigned(claims())
    if kind == "HS256 with the public key":
        return forger.hs256_with_public_key(claims())
    raise AssertionError(kind)


FORGED = ("expired", "not yet valid", "wrong issuer", "no audience", "another key", "another key, its own kid",
          "alg none", "HS256 with the public key")


def test_the_forger_makes_tokens_the_se_would_take(grid: Grid, ses: dict[str, str]) -> None:
    """The control of the forged cases: the same claims, well signed, write. Each case below differs in one
    thing only."""
    forger = Forger.of(grid.home)
    path = f"/user/alice/se-tokens/control-{uuid.uuid4().hex}"
    token = forger.signed_by_issuer(forger.claims("alice", ALICE_STORAGE, audience=STORAGE_AUDIENCE))
    assert _put(ses, "IHEP_DISK", path, b"ok", token).status_code in (200, 201)
    assert _on_disk(grid, "IHEP_DISK", path).read_bytes() == b"ok"
    assert _delete(ses, "IHEP_DISK", path, token).status_code in (200, 204)


@pytest.mark.parametrize("kind", FORGED)
def test_a_token_that_is_not_valid_writes_and_deletes_nothing(grid: Grid, ses: dict[str, str], kind: str,
                                                              victim: tuple[str, bytes]) -> None:
    path, data = victim
    token = _forged(Forger.of(grid.home), kind)
    new = f"/user/alice/se-tokens/forged-{uuid.uuid4().hex}"
    assert _put(ses, "IHEP_DISK", new, b"intruder", token).status_code in REFUSED
    assert _delete(ses, "IHEP_DISK", path, token).status_code in REFUSED
    assert requests.get(_https(ses, "IHEP_DISK", path), headers=_auth(token), verify=CA,
                        timeout=30).status_code in REFUSED
    assert not _on_disk(grid, "IHEP_DISK", new).exists()
    assert _on_disk(grid, "IHEP_DISK", path).read_bytes() == data


def test_a_token_for_another_audience_is_refused(grid: Grid, ses: dict[str, str],
                                                 victim: tuple[str, bytes]) -> None:
    """A real token of alice's, from the issuer, for Rucio's audience only."""
    path, data = victim
    token = grid.token("alice", "rucio", ALICE_STORAGE)
    new = f"/user/alice/se-tokens/aud-{uuid.uuid4().hex}"
    assert _put(ses, "IHEP_DISK", new, b"intruder", token).status_code in REFUSED
    assert _delete(ses, "IHEP_DISK", path, token).status_code in REFUSED
    assert not _on_disk(grid, "IHEP_DISK", new).exists()
    assert _on_disk(grid, "IHEP_DISK", path).read_bytes() == data


# --- valid tokens, paths outside their scopes


XROOTD_PREFIX = ("XRootD 5.5.3's SciTokens plugin compares a scope's path with a request's as strings: "
                 "/user/alice also opens /user/alicex (docs/security.md, Storage elements)")


@pytest.mark.parametrize("area", ["/raw/2026/1125/000001", "/user/bob", "/mc",
                                  pytest.param("/user/alicex", marks=pytest.mark.xfail(strict=True,
                                                                                        reason=XROOTD_PREFIX))])
def test_alice_writes_only_under_user_alice(grid: Grid, ses: dict[str, str], area: str) -> None:
    token = grid.token("alice", STORAGE_AUDIENCE)
    path = f"{area}/se-tokens-{uuid.uuid4().hex}"
    assert _put(ses, "IHEP_DISK", path, b"intruder", token).status_code in REFUSED
    assert not _on_disk(grid, "IHEP_DISK", path).exists()
    mine = f"/user/alice/se-tokens/mine-{uuid.uuid4().hex}"  # the same token does write her own area
    assert _put(ses, "IHEP_DISK", mine, b"hers", token).status_code in (200, 201)
    assert _delete(ses, "IHEP_DISK", mine, token).status_code in (200, 204)


@pytest.mark.parametrize("scope", ["storage.create:/user/alice/../../raw", "storage.modify:/user/alice/..",
                                   "storage.create:/user/alice/./x", "storage.create://raw"])
def test_the_issuer_refuses_a_path_traversal_scope(grid: Grid, scope: str) -> None:
    with pytest.raises(PermissionDenied, match="invalid_scope"):
        grid.token("alice", STORAGE_AUDIENCE, scope)


@pytest.mark.xfail(strict=True, reason="XRootD 5.5.3's SciTokens plugin resolves `..` in a scope's path: the "
                   "issuer's refusal (above) is what keeps such a scope out (docs/security.md, Storage elements)")
def test_a_forged_path_traversal_scope_writes_nothing_in_raw(grid: Grid, ses: dict[str, str]) -> None:
    """Signed with the issuer's own key, `/user/alice/../../raw` should open nothing outside /user/alice."""
    forger = Forger.of(grid.home)
    token = forger.signed_by_issuer(forger.claims("alice", "storage.create:/user/alice/../../raw",
                                                  audience=STORAGE_AUDIENCE))
    path = f"/raw/2026/1125/000002/se-tokens-{uuid.uuid4().hex}"
    assert _put(ses, "IHEP_DISK", path, b"intruder", token).status_code in REFUSED
    assert not _on_disk(grid, "IHEP_DISK", path).exists()


@pytest.fixture
def registered_raw(grid: Grid, tmp_path: Path) -> tuple[str, bytes]:
    """A raw file uploaded to IHEP_DISK by the raw-data service with the stock CLI and its token."""
    name = raw_file()
    data = os.urandom(4096)
    (tmp_path / name).write_bytes(data)
    grid.rucio("upload", "--rse", "IHEP_DISK", "--scope", "raw", name, account="rawdata", cwd=tmp_path)
    return name, data


def _replica_states(grid: Grid, name: str) -> str:
    return " ".join(grid.rucio("replica", "list", "file", f"raw:{name}", "--rses", "IHEP_DISK").stdout.split())


def test_a_user_cannot_delete_a_registered_raw_file(grid: Grid, ses: dict[str, str],
                                                    registered_raw: tuple[str, bytes]) -> None:
    name, data = registered_raw
    path = "/" + path_for("raw", name)
    listed = _replica_states(grid, name)
    assert name in listed
    for account in ("alice", "production"):
        token = grid.token(account, STORAGE_AUDIENCE)
        assert _delete(ses, "IHEP_DISK", path, token).status_code in REFUSED
        assert _put(ses, "IHEP_DISK", path, b"overwritten", token).status_code in REFUSED
    assert _on_disk(grid, "IHEP_DISK", path).read_bytes() == data
    assert _replica_states(grid, name) == listed


# --- Rucio: the users' tokens, and the ones it must not take


def test_rucio_takes_the_users_token_and_refuses_a_forged_one(grid: Grid) -> None:
    env = grid.env("alice")
    assert env["RUCIO_AUTH_TYPE"] == "oidc"
    who = subprocess.run([str(BIN / "rucio"), "whoami"], env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert who.returncode == 0, who.stderr
    assert "alice" in who.stdout
    forger = Forger.of(grid.home)
    claims = forger.claims("root", "openid profile", audience="rucio")
    for forged in (forger.signed_by_another_key(claims), forger.unsigned(claims)):
        refused = subprocess.run([str(BIN / "rucio"), "whoami"], env={**env, "BEARER_TOKEN": forged},
                                 capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
        # Rucio 41's CLI reports a refused login on stderr and exits 0
        assert "Cannot authenticate" in refused.stdout + refused.stderr
        assert "account    : root" not in refused.stdout


def test_rucio_refuses_alice_uploads_to_raw_and_to_bob(grid: Grid, tmp_path: Path) -> None:
    name = raw_file()
    (tmp_path / name).write_bytes(os.urandom(1024))
    # Rucio answers AccessDenied with HTTP 401; the CLI then tries to log in again and says "Cannot
    # authenticate" (exit code 0): -v shows Rucio's own answer
    raw = grid.rucio("-v", "upload", "--rse", "IHEP_DISK", "--scope", "raw", name, account="alice", cwd=tmp_path,
                     check=False)
    assert "account alice can not add file DIDs" in raw.stdout + raw.stderr
    bobs = f"user.bob.se-tokens-{uuid.uuid4().hex[:8]}.root"
    (tmp_path / bobs).write_bytes(os.urandom(1024))
    bob = grid.rucio("-v", "upload", "--rse", "IHEP_DISK", "--scope", "user.bob", bobs, account="alice",
                     cwd=tmp_path, check=False)
    assert "AccessDenied" in bob.stdout + bob.stderr
    assert not list(grid.rse_dir("IHEP_DISK").rglob(name))
    assert not list(grid.rse_dir("IHEP_DISK").rglob(bobs))
    for did in (f"raw:{name}", f"user.bob:{bobs}"):
        assert grid.rucio("did", "show", did, check=False).returncode != 0


def test_users_upload_and_download_with_the_stock_cli_and_their_token(grid: Grid, tmp_path: Path) -> None:
    name = f"user.alice.se-tokens-{uuid.uuid4().hex[:8]}.root"
    data = os.urandom(5000)
    (tmp_path / name).write_bytes(data)
    env = grid.env("alice")
    assert Path(env["BEARER_TOKEN_FILE"]).stat().st_mode & 0o077 == 0
    grid.rucio("upload", "--rse", "IHEP_DISK", "--scope", "user.alice", name, account="alice", cwd=tmp_path)
    [stored] = list(grid.rse_dir("IHEP_DISK").rglob(name))
    assert stored.read_bytes() == data
    out = tmp_path / "down"
    out.mkdir()
    grid.rucio("download", f"user.alice:{name}", "--dir", str(out), account="alice")
    assert next(out.rglob(name)).read_bytes() == data
