"""The daemon runner (juno_dcs.daemon) in-process: passes, sleeps, stop, back-off, once-mode, signals."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from juno_dcs import daemon
from juno_dcs.heartbeat import ALL, Share, stable_hash


class Recorder:
    """A run_once that follows a script of results (True: sleep, False: work left, an exception: fail)."""

    def __init__(self, stop: threading.Event, script: list[bool | Exception]) -> None:
        self.stop, self.script, self.calls = stop, list(script), 0
        self.times: list[float] = []

    def __call__(self, share: Share) -> bool:
        assert share == ALL
        self.calls += 1
        self.times.append(time.monotonic())
        step = self.script.pop(0)
        if not self.script:
            self.stop.set()
        if isinstance(step, Exception):
            raise step
        return step


def test_work_left_goes_again_at_once_and_nothing_done_sleeps() -> None:
    stop = threading.Event()
    run = Recorder(stop, [False, False, True, True])
    daemon.run_daemon("t", run, stop=stop, sleep_time=0.3)
    assert run.calls == 4
    gaps = [b - a for a, b in zip(run.times, run.times[1:], strict=False)]
    assert gaps[0] < 0.1
    assert gaps[1] < 0.1
    assert gaps[2] >= 0.25  # nothing done: a sleep


def test_once_runs_one_pass_and_raises() -> None:
    stop = threading.Event()
    run = Recorder(stop, [RuntimeError("boom"), True])
    with pytest.raises(RuntimeError, match="boom"):
        daemon.run_daemon("t", run, stop=stop, once=True, sleep_time=5)
    assert run.calls == 1


def test_a_failing_pass_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    run = Recorder(stop, [RuntimeError("boom"), False])
    daemon.run_daemon("t", run, stop=stop, sleep_time=0.5)
    assert run.calls == 2
    assert run.times[1] - run.times[0] >= 0.35  # the back-off (0.5 s +- 20 %)
    failed = [r for r in caplog.records if "pass failed" in r.getMessage()]
    assert failed
    assert failed[0].exc_info is not None


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = daemon.Backoff(1.0, 5.0, jitter=lambda: 1.0)
    assert [backoff.failed() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.succeeded()
    assert backoff.failed() == 1.0


def test_stop_cuts_the_sleep_short() -> None:
    stop = threading.Event()
    calls: list[float] = []

    def nothing(share: Share) -> bool:
        calls.append(time.monotonic())
        return True

    thread = threading.Thread(target=daemon.run_daemon, args=("t", nothing),
                              kwargs={"stop": stop, "sleep_time": 60.0})
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.0
    assert len(calls) == 1


def test_the_pass_in_progress_finishes() -> None:
    stop = threading.Event()
    finished: list[bool] = []

    def slow(share: Share) -> bool:
        time.sleep(0.3)
        finished.append(True)
        return False

    thread = threading.Thread(target=daemon.run_daemon, args=("t", slow), kwargs={"stop": stop, "sleep_time": 1})
    thread.start()
    time.sleep(0.1)
    stop.set()
    thread.join(5)
    assert finished == [True]


def test_a_custom_idle_is_used_for_the_sleep() -> None:
    stop = threading.Event()
    slept: list[float] = []
    run = Recorder(stop, [True, True])
    daemon.run_daemon("t", run, stop=stop, sleep_time=7.0, idle=slept.append)
    assert len(slept) == 1
    assert 6.5 < slept[0] <= 7.0


def test_sigterm_sets_the_stop_event() -> None:
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    seen: list[int] = []
    try:
        stop = daemon.stop_on_signals(on_stop=seen.append)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2)
        assert seen == [signal.SIGTERM]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_shares_split_keys_stably_and_completely() -> None:
    keys = [*range(100), *(f"QUEUE_{i}" for i in range(50))]
    shares = [Share(i, 3) for i in range(3)]
    for key in keys:
        assert sum(s.takes(key) for s in shares) == 1
    assert stable_hash("IHEP") == stable_hash("IHEP")
    assert Share(1, 2).sql("job_id") == "mod(job_id, 2) = 1"
    assert ALL.sql("job_id") == "TRUE"
    assert ALL.takes("anything")
