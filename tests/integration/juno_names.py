"""Unique JUNO names for tests: each call gets its own stream, so runs and tests never collide."""

from __future__ import annotations

import datetime as dt
import random
import uuid

from juno_rucio_policy.naming import block_name, raw_file_name

DAY = dt.date(2026, 11, 25)


def stream() -> str:
    return "t" + uuid.uuid4().hex[:10]  # a stream is a lower-case letter and up to 15 letters or digits


def raw_file(seq: int = 1, *, run: int | None = None, stream_name: str | None = None, day: dt.date = DAY) -> str:
    run = random.randrange(1, 999_999) if run is None else run  # noqa: S311
    return raw_file_name(run, stream_name or stream(), seq, day)


def block(stream_name: str | None = None, day: dt.date = DAY) -> str:
    return block_name(day, stream_name or stream())
