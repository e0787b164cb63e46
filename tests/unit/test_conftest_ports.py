"""The suite's own port helper (tests/conftest.py): a base port whose block of 100 holds a port in use is passed
over."""

from __future__ import annotations

import socket

import pytest

from tests import conftest


def test_free_base_port_passes_over_a_block_with_a_port_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest.random, "shuffle", lambda blocks: None)  # lowest block first
    first = conftest.free_base_port()
    assert first % 100 == 0
    assert 24000 <= first < 32000
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", first + 57))
        busy.listen()
        second = conftest.free_base_port()
    assert second % 100 == 0
    assert second > first  # the block with the listening port is skipped, the next free one taken
