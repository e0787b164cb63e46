"""The schemas this project owns and where their versions live (package data, found through importlib).

PostgreSQL schemas share the grid's database; each has its own version table in the schema `schema_versions`
(`schema_versions.wms` holds the dispatcher's version), so that a schema can be renamed by its own migration
(the probes' `monitor` became `probes`) without moving its version. The conditions database is MariaDB (SQLite in
unit tests): its version table is `alembic_version` in its own database.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Literal

VERSIONS_SCHEMA = "schema_versions"


@dataclass(frozen=True)
class Schema:
    """One schema: `name` (also its version table's name on PostgreSQL), the package that holds its versions
    and the directory inside it, and the grid programs that read or write it (stopped while it migrates on a
    running grid)."""

    name: str
    package: str
    directory: str
    programs: tuple[str, ...]
    kind: Literal["postgresql", "mariadb"] = "postgresql"

    @property
    def version_table(self) -> str:
        return self.name if self.kind == "postgresql" else "alembic_version"

    @property
    def version_table_schema(self) -> str | None:
        return VERSIONS_SCHEMA if self.kind == "postgresql" else None

    def versions_dir(self) -> Path:
        return Path(str(files(self.package) / self.directory))


# in the order `up` upgrades them (the dispatcher's before the production manager's, which refers to its jobs)
SCHEMAS: tuple[Schema, ...] = (
    # the daemon runner's heartbeats, which every daemon below writes
    Schema("daemons", "juno_dcs.migrations", "daemons", ("fts-worker", "wms-agent", "prodsys", "dashboard", "ingest",
                                                          "db-stats", "probes")),
    Schema("fts", "juno_dcs.migrations", "fts", ("fts-server", "fts-worker", "dashboard")),
    Schema("wms", "juno_dcs.migrations", "wms", ("wms-server", "wms-agent", "prodsys", "dashboard")),
    Schema("prodsys", "juno_dcs.migrations", "prodsys", ("prodsys",)),
    Schema("dashboard", "juno_dcs.migrations", "dashboard", ("dashboard",)),
    # in the probes' package (which depends on juno_dcs, not the other way round)
    Schema("probes", "juno_probes", "migrations", ("probes", "dashboard")),
)
CONDITIONS = Schema("conditions", "juno_dcs.migrations", "conditions", ("conditions",), kind="mariadb")


def by_name(name: str) -> Schema:
    for schema in (*SCHEMAS, CONDITIONS):
        if schema.name == name:
            return schema
    raise KeyError(f"no schema {name!r}: one of {', '.join(s.name for s in (*SCHEMAS, CONDITIONS))}")
