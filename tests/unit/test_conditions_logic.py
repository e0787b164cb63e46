"""Condition data's admin writes and lookups on SQLite: idempotent replays, newest-wins, locking, export/import."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from juno_dcs.conditions import db, logic
from juno_dcs.conditions.errors import ConditionsInputError, Conflict, NotFound
from juno_dcs.conditions.models import FolderInfo, RunRange, parse_export

ES = FolderInfo(name="energy_scale", payload_type="energy_scale")
A = b'{"pe_per_mev": 1600}'
B = b'{"pe_per_mev": 1700}'


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    with engine.begin() as conn:
        db.create_schema(conn)
    yield engine
    engine.dispose()


def _tag_with(engine: Engine, name: str = "T1") -> None:
    with engine.begin() as conn:
        logic.create_tag(conn, name, "test")
        logic.add_payload(conn, name, ES, RunRange(first=0, last=100), A)


def test_create_tag_is_idempotent(engine: Engine) -> None:
    with engine.begin() as conn:
        assert logic.create_tag(conn, "T1")[1] is True
        assert logic.create_tag(conn, "T1")[1] is False
        assert [t.name for t in logic.list_tags(conn)] == ["T1"]


def test_replayed_add_changes_nothing(engine: Engine) -> None:
    _tag_with(engine)
    with engine.begin() as conn:
        before = db.counts(conn)
        added = logic.add_payload(conn, "T1", ES, RunRange(first=0, last=100), A)
        assert (added.new_iov, added.new_payload) == (False, False)
        assert db.counts(conn) == before


def test_newest_interval_wins(engine: Engine) -> None:
    _tag_with(engine)
    with engine.begin() as conn:
        logic.add_payload(conn, "T1", ES, RunRange(first=50, last=60), B)
        assert logic.lookup(conn, "T1", "energy_scale", 49)[1].first_run == 0
        hit = logic.lookup(conn, "T1", "energy_scale", 55)[1]
        assert (hit.first_run, hit.last_run, hit.payload_size) == (50, 60, len(B))
        assert logic.get_payload(conn, hit.payload_hash) == B
        info, everything = logic.lookup_all(conn, "T1", 55)
        assert [i.payload_hash for i in everything] == [hit.payload_hash]
        assert info.state == "open"


def test_lookup_says_what_is_missing(engine: Engine) -> None:
    _tag_with(engine)
    with engine.begin() as conn:
        with pytest.raises(NotFound, match="unknown global tag 'T2'"):
            logic.lookup(conn, "T2", "energy_scale", 1)
        with pytest.raises(NotFound, match="unknown folder 'gains'"):
            logic.lookup(conn, "T1", "gains", 1)
        with pytest.raises(NotFound, match="covers run 101"):
            logic.lookup(conn, "T1", "energy_scale", 101)
        with pytest.raises(ConditionsInputError, match="folder"):
            logic.lookup(conn, "T1", "x' OR 1=1", 1)


def test_locked_tag_refuses_changes(engine: Engine) -> None:
    _tag_with(engine)
    with engine.begin() as conn:
        info, now = logic.lock_tag(conn, "T1")
        assert (info.state, now) == ("locked", True)
        assert logic.lock_tag(conn, "T1")[1] is False
        with pytest.raises(Conflict, match="locked"):
            logic.add_payload(conn, "T1", ES, RunRange(first=0, last=1), B)
        with pytest.raises(Conflict, match="locked"):
            logic.create_tag(conn, "T1")


def test_empty_tag_cannot_be_locked(engine: Engine) -> None:
    with engine.begin() as conn:
        logic.create_tag(conn, "T1")
        with pytest.raises(Conflict, match="no payloads"):
            logic.lock_tag(conn, "T1")


def test_folder_type_is_fixed(engine: Engine) -> None:
    _tag_with(engine)
    with engine.begin() as conn:
        assert logic.folder_for(conn, "energy_scale", None) == ES
        with pytest.raises(ConditionsInputError, match="is new: give its payload type"):
            logic.folder_for(conn, "gains", None)
        with pytest.raises(Conflict, match="holds energy_scale payloads"):
            logic.add_payload(conn, "T1", FolderInfo(name="energy_scale", payload_type="json"),
                              RunRange(first=0, last=1), b"{}")


def test_bad_payload_writes_nothing(engine: Engine) -> None:
    _tag_with(engine)
    with engine.begin() as conn:
        before = db.counts(conn)
    with pytest.raises(ConditionsInputError, match="not a valid pmt_gains"), engine.begin() as conn:
        logic.add_payload(conn, "T1", FolderInfo(name="gains", payload_type="pmt_gains"),
                          RunRange(first=0, last=1), b'{"channel": [1]}')
    with engine.begin() as conn:
        assert db.counts(conn) == before


def test_export_import_round_trip(engine: Engine) -> None:
    _tag_with(engine)
    with engine.begin() as conn:
        logic.add_payload(conn, "T1", ES, RunRange(first=50, last=60), B)
        logic.lock_tag(conn, "T1")
        exported = logic.export_tag(conn, "T1")
    copy = parse_export(json.dumps({**json.loads(exported.model_dump_json()), "name": "T1-copy"}), "copy.json")
    with engine.begin() as conn:
        assert logic.import_tag(conn, copy) is True
        assert logic.import_tag(conn, copy) is False  # replay
        assert logic.import_tag(conn, exported) is False  # the original is there with the same content
        again = logic.export_tag(conn, "T1-copy")
        assert (again.state, again.iovs, again.payloads) == ("locked", exported.iovs, exported.payloads)
        assert logic.lookup(conn, "T1-copy", "energy_scale", 55)[1].payload_size == len(B)


def test_import_conflicts_write_nothing(engine: Engine) -> None:
    _tag_with(engine)
    with engine.begin() as conn:
        exported = logic.export_tag(conn, "T1")
        logic.add_payload(conn, "T1", ES, RunRange(first=200, last=300), B)
        before = db.counts(conn)
    with pytest.raises(Conflict, match="exists with other content"), engine.begin() as conn:
        logic.import_tag(conn, exported)
    other = json.loads(exported.model_dump_json())
    other.update(name="T9", folders=[{"name": "energy_scale", "payload_type": "json", "description": ""}])
    with pytest.raises(Conflict, match="holds energy_scale"), engine.begin() as conn:
        logic.import_tag(conn, parse_export(json.dumps(other), "t9.json"))
    with engine.begin() as conn:
        assert db.counts(conn) == before


def test_modified_moves_with_every_change(engine: Engine) -> None:
    _tag_with(engine)
    with engine.begin() as conn:
        first = logic.get_tag(conn, "T1").modified
        logic.add_payload(conn, "T1", ES, RunRange(first=5, last=6), B)
        assert logic.get_tag(conn, "T1").modified > first
        assert logic.show_tag(conn, "T1").folders[0]["iovs"] == 2
