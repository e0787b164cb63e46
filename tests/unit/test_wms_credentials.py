"""The dispatcher's clients and their tokens (juno_dcs.wms.credentials, WmsClient's token provider)."""

from __future__ import annotations

from pathlib import Path

import pytest

from juno_dcs.errors import ServiceError
from juno_dcs.wms.client import WmsClient, WmsError
from juno_dcs.wms.credentials import NoToken, user_token


def test_the_users_token_is_found_by_wlcg_discovery_at_each_call(tmp_path: Path) -> None:
    token_file = tmp_path / "bt"
    token_file.write_text("first\n")
    token = user_token({"BEARER_TOKEN_FILE": str(token_file)})
    assert token() == "first"
    token_file.write_text("renewed\n")  # `juno-dcs env` run again meanwhile
    assert token() == "renewed"
    assert user_token({"BEARER_TOKEN": " inline ", "BEARER_TOKEN_FILE": str(token_file)})() == "inline"


def test_no_token_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(NoToken, match=r'eval "\$\(juno-dcs env --account NAME\)"'):
        user_token({"BEARER_TOKEN_FILE": str(tmp_path / "missing")})()


def test_an_issuer_out_of_reach_is_a_transient_dispatcher_error() -> None:
    def unreachable() -> str:
        raise ServiceError("the token issuer https://127.0.0.1:9/ is out of reach (ConnectionError)")

    client = WmsClient("http://127.0.0.1:9", token=unreachable)
    with pytest.raises(WmsError, match="cannot get a token for the dispatcher") as err:
        client.queues()
    assert err.value.transient  # a pilot's heartbeat tries again rather than die
