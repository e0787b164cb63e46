"""The grid's SQLAlchemy plugin for Rucio (?plugin=juno_dcs in rucio.cfg), on a real PostgreSQL: an ORM flush of
many rows goes out as one short statement through executemany, and every row lands."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import String, create_engine, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.integration.wms_helpers import throwaway_database


class Base(DeclarativeBase):
    pass


class File(Base):
    __tablename__ = "files"
    scope: Mapped[str] = mapped_column(String(25), primary_key=True)
    name: Mapped[str] = mapped_column(String(250), primary_key=True)
    bytes: Mapped[int]
    lock_cnt: Mapped[int] = mapped_column(server_default="0")  # as Rucio's models have: the ORM wants it back


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with throwaway_database("sqla_tuning_test", migrated=False) as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


def flush_statements(url: str) -> tuple[list[tuple[str, bool]], int]:
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    seen: list[tuple[str, bool]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, executemany: bool) -> None:
        if statement.startswith("INSERT"):
            seen.append((statement, executemany))

    with Session(engine) as session, session.begin():
        session.execute(File.__table__.delete())
        files = [File(scope="raw", name=f"f{i}", bytes=i) for i in range(1000)]
        session.add_all(files)
        session.flush()
        assert files[-1].lock_cnt == 0  # fetched back or loaded on access: the same value either way
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(File).where(File.lock_cnt == 0))
    engine.dispose()
    return seen, int(count or 0)


def test_without_the_plugin_a_flush_is_one_long_multi_values_insert(database: str) -> None:
    seen, count = flush_statements(database)
    assert count == 1000
    assert len(seen) == 1
    assert "RETURNING" in seen[0][0]
    assert len(seen[0][0]) > 10_000  # 1,000 VALUES rows: psycopg converts this text anew every time


def test_with_the_plugin_a_flush_is_one_short_statement_sent_for_every_row(database: str) -> None:
    seen, count = flush_statements(database + "?plugin=juno_dcs")
    assert count == 1000
    assert len(seen) == 1
    statement, executemany = seen[0]
    assert executemany
    assert len(statement) < 200


def test_the_plugin_leaves_no_argument_for_the_driver() -> None:
    engine = create_engine("postgresql+psycopg://u:p@127.0.0.1:1/db?plugin=juno_dcs")
    assert engine.dialect.use_insertmanyvalues is False
    assert "plugin" not in engine.url.query
