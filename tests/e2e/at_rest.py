"""Where a grid keeps tokens at rest: the scans of its files and database tables behind test_tokens_at_rest."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

# A JWT in compact serialization: a base64url header and payload that both start as a JSON object ("{" -> "eyJ"),
# then a signature. The issuer's tokens, Rucio's per-transfer tokens and any IAM's all look like this.
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Found:
    where: str  # a file, or schema.table
    token: str  # the first characters only: enough to tell which, useless to a reader of the failure

    def __str__(self) -> str:
        return f"{self.where}: {self.token}..."


def scan_bytes(where: str, data: bytes) -> list[Found]:
    return [Found(where, m.group(0)[:24].decode()) for m in JWT.finditer(data)]


def scan_file(path: Path) -> list[Found]:
    """Every JWT in a file, read in overlapping chunks (a token cut by a chunk boundary is still seen)."""
    found: list[Found] = []
    tail = b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            data = tail + chunk
            found += [x for x in scan_bytes(str(path), data) if x not in found]
            tail = data[-4096:]
    return found


def files_under(root: Path, skip: set[Path]) -> Iterator[Path]:
    """Regular files under `root` (links not followed), the directories in `skip` left out."""
    for top, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if Path(top, d) not in skip]
        for name in names:
            path = Path(top, name)
            if path.is_file() and not path.is_symlink():
                yield path


def loose_credentials(directory: Path) -> list[str]:
    """The files of a credential directory that someone other than their owner may read (or the directory)."""
    bad = [] if stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0 else [f"{directory} (directory)"]
    for top, _dirs, names in os.walk(directory):
        for name in names:
            path = Path(top, name)
            if stat.S_IMODE(path.lstat().st_mode) & 0o077:
                bad.append(f"{path} ({oct(stat.S_IMODE(path.lstat().st_mode))})")
    return bad


def scan_postgres(url: str) -> tuple[list[Found], int]:
    """Every JWT in every table of every schema of the database (each row as text); and how many tables."""
    found: list[Found] = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall()
        for schema, table in tables:
            query = sql.SQL("COPY (SELECT * FROM {}.{}) TO STDOUT").format(sql.Identifier(schema),
                                                                         sql.Identifier(table))
            with conn.cursor() as cur, cur.copy(query) as copy:
                data = b"".join(bytes(block) for block in copy)
            found += scan_bytes(f"{schema}.{table}", data)
    return found, len(tables)


def scan_mariadb(database: str) -> tuple[list[Found], int]:
    """The same for a MariaDB database (the condition data), through mysqldump."""
    import subprocess

    dump = subprocess.run(["mysqldump", "-h", "127.0.0.1", "-u", "root", "--skip-extended-insert", database],
                          capture_output=True, check=True, timeout=300).stdout
    return scan_bytes(database, dump), dump.count(b"CREATE TABLE")
