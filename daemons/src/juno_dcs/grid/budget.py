"""The grid's PostgreSQL connection budget.

Every program of the grid declares the most connections it may hold at once to the grid's database
(`Program.pg_connections`, from its pool sizes and worker counts). Before `up` starts anything it compares the
sum with PostgreSQL's free slots (max_connections, less the slots reserved for superusers, less the client
connections open now, plus those the grid itself already holds when it is being updated) and refuses, with the
numbers, when the grid would not fit: a PostgreSQL that runs out of slots makes programs fail at random later,
which is much harder to diagnose than a refusal now. docs/admin.md ("The connection budget") lists each share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import psycopg

from juno_dcs.errors import GridStateError, ServiceError
from juno_dcs.grid import database


class HasBudget(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def pg_connections(self) -> int: ...


@dataclass(frozen=True)
class Slots:
    """PostgreSQL's connection slots as one query saw them."""

    max_connections: int
    reserved: int  # superuser_reserved_connections (and reserved_connections where the server has it)
    in_use: int  # client connections open now, of every database and role
    held_by_grid: int  # of those, the grid's own role's (a running grid that `up` updates gives them back)

    @property
    def free(self) -> int:
        """Slots the grid may use: what nobody holds, plus what the grid holds already."""
        return self.max_connections - self.reserved - self.in_use + self.held_by_grid


def shares(programs: Iterable[HasBudget]) -> dict[str, int]:
    """Program -> its share of the budget (programs that never connect to PostgreSQL are left out)."""
    return {p.name: p.pg_connections for p in programs if p.pg_connections > 0}


def read_slots(admin_url: str, grid_role: str) -> Slots:
    """Ask PostgreSQL (through the superuser connection) how many slots it has and how many are taken."""
    try:
        with database.admin_connect(admin_url) as conn:
            settings: dict[str, int] = {str(name): int(str(value)) for name, value in conn.execute(
                "SELECT name, setting FROM pg_settings "
                "WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
            ).fetchall()}
            row = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE usename = %s) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend'", (grid_role,)).fetchone()
    except psycopg.Error as exc:
        where = database.shown(admin_url)
        raise ServiceError(f"PostgreSQL at {where} could not count its connection slots: {exc}") from exc
    in_use, held = (int(str(row[0])), int(str(row[1]))) if row is not None else (0, 0)
    return Slots(max_connections=int(settings["max_connections"]),
                 reserved=int(settings.get("superuser_reserved_connections", 0))
                 + int(settings.get("reserved_connections", 0)),
                 in_use=in_use, held_by_grid=held)


def check(budget: Mapping[str, int], slots: Slots, where: str) -> None:
    """Refuse (GridStateError, nothing started) when the grid's budget exceeds the free slots."""
    need = sum(budget.values())
    if need <= slots.free:
        return
    biggest = sorted(budget.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
    raise GridStateError(
        f"PostgreSQL at {where} has {slots.free} free connection slots and this grid's programs may open {need}: "
        f"max_connections {slots.max_connections} - {slots.reserved} reserved for superusers - "
        f"{slots.in_use} in use" + (f" + {slots.held_by_grid} held by this grid" if slots.held_by_grid else "")
        + f" = {slots.free}. The largest shares: " + ", ".join(f"{n} {c}" for n, c in biggest)
        + ". Nothing was started. Close other clients or grids (`juno-dcs down`), or raise max_connections "
        "(docs/admin.md, \"The connection budget\")."
    )
