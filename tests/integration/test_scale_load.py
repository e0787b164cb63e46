"""The fast catalogue fill (benchmarks/scale_load.py) writes what Rucio writes: on the session's grid, unit 1 is
registered through Rucio's bulk route, its rows are read, removed and written again by COPY from unit 0's rows, and the
two row sets are the same in every table, column for column (times excepted: a copy has its own; and the flags
Rucio's daemons clear, which a copy has cleared)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks.scale_shape import UNIT_FILES, unit

from tests.conftest import Grid

pytestmark = [pytest.mark.grid, pytest.mark.slow]  # two units through Rucio's bulk route: about a minute

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("dids", "contents", "replicas", "did_meta")


def _fill(grid: Grid, scopes: list[str], *args: str) -> None:
    env = dict(os.environ, RUCIO_CONFIG=str(grid.home / "etc" / "rucio.cfg"))
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale_fill.py"), "--user-scopes", ",".join(scopes),
                    *args], env=env, check=True, capture_output=True, text=True)


def _conninfo(grid: Grid) -> str:
    from psycopg.conninfo import make_conninfo

    from juno_dcs.grid.home import GridHome

    state = GridHome(grid.home).load_state()
    return make_conninfo(state.pg_admin_url, dbname=state.db_name)


def _keys(scopes: list[str]) -> tuple[list[str], list[str]]:
    keys = set()
    for d in unit(1, tuple(scopes)):
        keys.add((d.scope, d.name))
        keys.update((d.scope, f.name) for f in d.files)
        if d.container:
            keys.add((d.scope, d.container))
    ordered = sorted(keys)
    return [k[0] for k in ordered], [k[1] for k in ordered]


def _rows(conn: Any, scopes: list[str], flags: dict[str, list[Any]] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Unit 1's rows per table, sorted, with every time replaced by a mark (so a missing time still shows) and the
    flags Rucio's daemons clear (DAEMON_FLAGS) by a mark, their values collected into `flags`: Rucio's judge and
    transmogrifier run beside the test and clear them at their own pace."""
    from benchmarks.scale_load import DAEMON_FLAGS

    keys = _keys(scopes)
    out = {}
    for table in TABLES:
        cur = conn.execute(f"SELECT t.* FROM rucio.{table} t JOIN unnest(%s::text[], %s::text[]) AS k(s, n) "  # noqa: S608
                           "ON t.scope = k.s AND t.name = k.n", keys)
        names = [c.name for c in cur.description or ()]
        marked = {names.index(f) for f in DAEMON_FLAGS.get(table, ())}
        rows = []
        for r in cur.fetchall():
            for i in marked:
                if flags is not None:
                    flags.setdefault(names[i], []).append(r[i])
            rows.append(tuple("<time>" if isinstance(v, dt.datetime) else "<flag>" if i in marked else v
                              for i, v in enumerate(r)))
        out[table] = sorted(rows)
    return out


def _remove(conn: Any, scopes: list[str]) -> None:
    keys = _keys(scopes)
    for table in ("contents", "replicas", "did_meta", "dids"):
        conn.execute(f"DELETE FROM rucio.{table} t USING unnest(%s::text[], %s::text[]) AS k(s, n) "  # noqa: S608
                     "WHERE t.scope = k.s AND t.name = k.n", keys)


@pytest.mark.timeout(900)
def test_a_copied_unit_has_the_rows_rucio_writes(grid: Grid) -> None:
    import psycopg
    from benchmarks.scale import user_scopes

    scopes = user_scopes(grid.home)
    _fill(grid, scopes, "--from", "0", "--to", str(2 * UNIT_FILES))  # through Rucio (units already there stay)
    with psycopg.connect(_conninfo(grid)) as conn:
        by_rucio = _rows(conn, scopes)
        assert len(by_rucio["replicas"]) == UNIT_FILES
        assert len(by_rucio["did_meta"]) == 6  # the raw blocks' metadata
        _remove(conn, scopes)
        conn.commit()
        assert all(not rows for rows in _rows(conn, scopes).values())
    _fill(grid, scopes, "--copy", "--from", str(UNIT_FILES), "--to", str(2 * UNIT_FILES))
    with psycopg.connect(_conninfo(grid)) as conn:
        flags: dict[str, list[Any]] = {}
        copied = _rows(conn, scopes, flags)
    for table in TABLES:
        assert copied[table] == by_rucio[table], table
    # the daemons' flags: a copy is as they leave a registration
    assert flags.keys() == {"is_new", "rule_evaluation"}
    assert set(flags["is_new"]) == {False}
    assert set(flags["rule_evaluation"]) == {None}
    # a second copy of a unit that is there adds nothing
    _fill(grid, scopes, "--copy", "--from", str(UNIT_FILES), "--to", str(2 * UNIT_FILES))
    with psycopg.connect(_conninfo(grid)) as conn:
        assert _rows(conn, scopes) == copied

