"""The migrations' registry and scripts without a server: every schema has one linear chain of versions from 1 to
its head, found as package data; the conditions database upgrades on SQLite (as its unit tests use it) and a
second upgrade is a no-op; the start-up check names the version and the way out."""

from __future__ import annotations

import ast

import pytest
import sqlalchemy as sa

from juno_dcs.conditions import db as conditions_db
from juno_dcs.migrations import runner
from juno_dcs.migrations.check import SchemaVersionError, require_head_sqlalchemy
from juno_dcs.migrations.registry import CONDITIONS, SCHEMAS, by_name


@pytest.mark.parametrize("schema", [*SCHEMAS, CONDITIONS], ids=lambda s: s.name)
def test_each_schema_has_one_linear_chain_from_version_1(schema: runner.Schema) -> None:
    script = runner.script_of(schema)
    chain = list(script.walk_revisions("base", "heads"))  # newest first
    assert [r.revision for r in reversed(chain)] == [str(n) for n in range(1, len(chain) + 1)]
    assert runner.head(schema) == str(len(chain))
    for path in schema.versions_dir().glob("*.py"):
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path} says what it does"


def test_the_heads_this_release_needs() -> None:
    assert {s.name: runner.head(s) for s in SCHEMAS} == {"daemons": "1", "fts": "2", "wms": "3", "prodsys": "1",
                                                           "dashboard": "2", "probes": "2"}
    with pytest.raises(KeyError, match="no schema 'monitor'"):
        by_name("monitor")


def test_the_conditions_tables_upgrade_on_sqlite_once() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conditions_db.create_schema(conn)
        assert runner.current_on(conn, CONDITIONS) == "1"
        require_head_sqlalchemy(conn, "conditions")
        tables = set(sa.inspect(conn).get_table_names())
        assert runner.upgrade_on(conn, CONDITIONS).changed is False
    assert tables == {"cond_tags", "cond_folders", "cond_payloads", "cond_iovs", "alembic_version"}


def test_a_schema_behind_is_refused_with_the_way_out() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conditions_db.metadata.create_all(conn)  # tables of before migrations, no version
        with pytest.raises(SchemaVersionError) as caught:
            require_head_sqlalchemy(conn, "conditions")
    assert str(caught.value) == ("schema conditions has no version (not created or not migrated yet), the code needs "
                                 "1: run `juno-dcs up` (or `juno-dcs db-upgrade`), which upgrades every schema")
    assert caught.value.exit_code == 1
    assert caught.value.http_status == 409


def test_libpq_urls_become_psycopg3_urls() -> None:
    assert runner.sqlalchemy_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert runner.sqlalchemy_url("postgres://h/d") == "postgresql+psycopg://h/d"
    assert runner.sqlalchemy_url("sqlite://") == "sqlite://"
