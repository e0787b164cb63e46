"""What the transfer service keeps of a job's tokens (juno_dcs.transfer.keeper), without an issuer or with one out
of reach: nothing accepted is lost and no token reaches a log. The exchange and the refresh against the grid's
real issuer are in tests/integration/test_transfer_tokens.py."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from juno_dcs.tokens.config import ClientAuth
from juno_dcs.tokens.sealed import PREFIX, Sealer, ensure_key
from juno_dcs.transfer.keeper import Kept, TokenKeeper, expires_at
from tests.tokens import LocalIssuer


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    ensure_key(tmp_path / "key")
    return Sealer(tmp_path / "key")


def _token(lifetime: float) -> str:
    local = LocalIssuer()
    return local.token("localhost", "alice", "storage.read:/", exp=int(time.time() + lifetime))


def test_expires_at_reads_a_jwts_exp_and_nothing_else() -> None:
    token = _token(300)
    exp = expires_at(token)
    assert exp is not None
    assert abs(exp - time.time() - 300) < 5
    for other in ("opaque-macaroon", "a.b.c", "", "x.eyJmb28iOiAxfQ.y"):
        assert expires_at(other) is None


def test_a_value_stored_before_refresh_tokens_opens_as_the_token_alone(sealer: Sealer) -> None:
    assert Kept.loads("eyJ.old.token") == Kept(access="eyJ.old.token")
    stored = sealer.seal("eyJ.old.token")
    assert TokenKeeper(sealer, None).token(stored, 3600) == "eyJ.old.token"


def test_without_an_exchange_client_a_job_keeps_the_tokens_it_came_with(sealer: Sealer) -> None:
    keeper = TokenKeeper(sealer, None)
    short = _token(5)
    kept = keeper.keep_all([short, short])
    assert list(kept) == [short]
    assert kept[short].startswith(PREFIX)
    assert short not in kept[short]
    assert keeper.token(kept[short], 3600) == short  # nothing to refresh with: the storage will say why
    assert keeper.token(None, 60) is None


def test_an_issuer_out_of_reach_loses_nothing_and_logs_no_token(tmp_path: Path, sealer: Sealer,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "secret").write_text("s\n")
    (tmp_path / "secret").chmod(0o600)
    exchange = ClientAuth(issuer="https://127.0.0.1:9/", client_id="fts", secret_file=tmp_path / "secret")
    keeper = TokenKeeper(sealer, exchange)
    token = _token(5)
    with caplog.at_level(logging.WARNING):
        kept = keeper.keep_all([token])
    assert Kept.loads(str(sealer.open(kept[token]))) == Kept(access=token)
    assert "without a refresh token" in caplog.text
    # a stored refresh token that cannot be used now: the copy goes on with the token there is
    stored = sealer.seal(Kept(access=token, refresh="eyJ.refresh.token").dumps())
    with caplog.at_level(logging.WARNING):
        assert keeper.token(stored, 3600) == token
    assert "cannot refresh" in caplog.text
    assert token not in caplog.text
    assert "eyJ.refresh.token" not in caplog.text
