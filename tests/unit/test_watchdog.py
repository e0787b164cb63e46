"""The watchdog's backoff: doubling from 5 s, capped at 60 s, starting over after two minutes of RUNNING."""

from __future__ import annotations

from juno_dcs.grid.watchdog import MAX_DELAY, STABLE_AFTER, Backoff


def test_the_delay_doubles_per_give_up_up_to_the_cap() -> None:
    backoff = Backoff()
    delays = [backoff.on_fatal("rucio-conveyor-submitter", float(t)) for t in range(7)]
    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert max(delays) == MAX_DELAY


def test_programs_back_off_independently() -> None:
    backoff = Backoff()
    assert backoff.on_fatal("kafka", 0.0) == 5.0
    assert backoff.on_fatal("kafka", 1.0) == 10.0
    assert backoff.on_fatal("ingest", 2.0) == 5.0


def test_a_program_that_ran_long_enough_starts_over() -> None:
    backoff = Backoff()
    for t in range(4):
        backoff.on_fatal("ingest", float(t))
    backoff.on_running("ingest", 100.0)
    assert backoff.on_fatal("ingest", 100.0 + STABLE_AFTER) == 5.0
    backoff.on_running("ingest", 500.0)
    assert backoff.on_fatal("ingest", 510.0) == 10.0  # ten seconds of RUNNING is not stable
