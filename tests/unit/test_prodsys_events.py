"""Rucio's events as the production manager reads them: hermes's message bodies, bad ones, the wakeup, the
configuration and the choice between a woken and a full pass."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from juno_dcs.errors import ConfigError
from juno_dcs.prodsys import daemon
from juno_dcs.prodsys.events import BadEvent, EventsConfig, Listener, Wakeup, parse


def body(event_type: str = "rule_ok", **payload: Any) -> str:
    return json.dumps({"event_type": event_type, "payload": payload or {"scope": "mc", "name": "mc.A.b.detsim",
                                                                        "rule_id": "abc"},
                       "created_at": "2026-12-04 10:00:00.000000"})


def config(tmp_path: Path, **kw: Any) -> EventsConfig:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    return EventsConfig.model_validate({"url": "stomp://127.0.0.1:23002", "username": "events",
                                        "password_file": str(secret), **kw})


def test_a_hermes_message_is_parsed() -> None:
    event = parse(body("RULE_OK"))
    assert (event.event_type, event.scope, event.name) == ("rule_ok", "mc", "mc.A.b.detsim")
    assert parse(body().encode()).name == "mc.A.b.detsim"


@pytest.mark.parametrize(("raw", "why"), [
    ("", "not JSON"),
    ("{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    ("[1, 2]", "a JSON list, not an object"),
    ("42", "a JSON int, not an object"),
    ("{}", "no event_type"),
    ('{"event_type": ""}', "no event_type"),
    ('{"event_type": 7, "payload": {}}', "no event_type"),
    ('{"event_type": "rule_ok"}', "rule_ok: no payload object"),
    ('{"event_type": "rule_ok", "payload": "mc:x"}', "rule_ok: no payload object"),
    ('{"event_type": "rule_ok", "payload": {"name": "x"}}', "rule_ok: the payload has no scope and name"),
    ('{"event_type": "rule_ok", "payload": {"scope": "mc", "name": 3}}', "the payload has no scope and name"),
])
def test_a_bad_message_says_what_is_wrong(raw: str | bytes, why: str) -> None:
    with pytest.raises(BadEvent, match=why):
        parse(raw)


def test_the_listener_wakes_for_rule_events_of_its_scope_only(tmp_path: Path) -> None:
    wakeup = Wakeup()
    listener = Listener(config(tmp_path), wakeup, "mc")
    for raw in (body("rule_ok"), body("datasetlock_ok", scope="mc", name="mc.A.b.elecsim", rse="IHEP_DISK"),
                body("rule_ok", scope="raw", name="block.20261204.physics"),  # another scope
                body("transfer-done", scope="mc", name="mc.A.b.detsim.000001.root"),  # not a wake event
                "garbage", '{"event_type": "rule_ok"}'):
        listener.on_message(SimpleNamespace(body=raw))
    assert wakeup.take() == {"mc:mc.A.b.detsim", "mc:mc.A.b.elecsim"}
    assert (wakeup.received, listener.skipped) == (2, 2)
    assert wakeup.take() == set()


def test_the_wait_ends_on_an_event_on_stop_or_after_its_time() -> None:
    wakeup, stop = Wakeup(), threading.Event()
    start = time.monotonic()
    assert wakeup.wait(0.2, stop) is False
    assert time.monotonic() - start >= 0.2
    threading.Timer(0.1, wakeup.add, args=("mc:x",)).start()
    start = time.monotonic()
    assert wakeup.wait(30, stop) is True
    assert time.monotonic() - start < 5
    wakeup.take()
    threading.Timer(0.1, stop.set).start()
    start = time.monotonic()
    assert wakeup.wait(30, stop) is False
    assert time.monotonic() - start < 5


def test_the_configuration_is_checked(tmp_path: Path) -> None:
    good = config(tmp_path)
    assert good.host_port == ("127.0.0.1", 23002)
    assert good.password() == "s3cret"
    for url in ("http://127.0.0.1:23002", "stomp://127.0.0.1", "stomp://:23002", "23002"):
        with pytest.raises(ValidationError, match="is not stomp://HOST:PORT"):
            config(tmp_path, url=url)
    with pytest.raises(ValidationError, match="extra"):
        config(tmp_path, topic="/topic/x")
    missing = config(tmp_path, password_file=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"events\.password_file: cannot read .*nowhere"):
        missing.password()


def test_a_broker_that_does_not_answer_leaves_the_listener_down(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    listener = Listener(config(tmp_path, url=f"stomp://127.0.0.1:{port}", heartbeat_s=1, retry_s=60),
                        Wakeup(), "mc")
    assert listener.ensure() is False
    assert listener.connected is False
    assert listener.ensure() is False  # the next attempt waits retry_s
    listener.close()


class FakeStore:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.processed: list[int] = []

    def productions(self, states: object) -> list[dict[str, Any]]:
        return self.rows

    def try_lock(self, pid: int) -> bool:
        return True

    def unlock(self, pid: int) -> None:
        pass

    def reconnect_if_lost(self) -> bool:
        return False


def production(pid: int, name: str) -> dict[str, Any]:
    steering = {"name": name, "campaign": "C1", "software": "J25.1.0", "args": {"detsim": "gun"},
                "events_per_job": 1, "jobs": 1, "workflow": ["detsim", "elecsim"], "output_storage": "site-local",
                "destinations": ["IHEP_DISK"], "lifetime": "2 days"}
    return {"production_id": pid, "name": name, "steering": steering}


def test_a_woken_pass_works_only_the_productions_the_events_name(tmp_path: Path) -> None:
    store = FakeStore([production(1, "one"), production(2, "two")])
    done: list[int] = []
    manager = SimpleNamespace(store=store, process=lambda pid: done.append(pid) or 0)
    wakeup, stop = Wakeup(), threading.Event()
    driven = daemon.EventDriven(manager, Listener(config(tmp_path), wakeup, "mc"), wakeup, stop,  # type: ignore[arg-type]
                                reconcile=600)
    assert daemon.step_dids(store.rows[1]) == {"mc:mc.C1.two.detsim", "mc:mc.C1.two.elecsim"}
    assert driven.run_once(daemon.ALL) is True  # the first pass is full
    assert done == [1, 2]
    wakeup.add("mc:mc.C1.two.detsim")
    done.clear()
    assert driven.run_once(daemon.ALL) is True
    assert done == [2]
    done.clear()
    assert driven.run_once(daemon.ALL) is True  # no event: a full pass (the runner idles before it)
    assert done == [1, 2]
    driven.next_full = 0.0  # a full pass due: it comes even with events waiting
    wakeup.add("mc:mc.C1.one.elecsim")
    done.clear()
    driven.run_once(daemon.ALL)
    assert done == [1, 2]
    assert driven.passes == {"full": 3, "woken": 1}
