"""After the stories (a data-taking day, a production, a user task) and every other test of the session have run
on the shared grid with tokens on, no token is at rest anywhere but in the credential files meant for it: not in a
log, a configuration, Kafka's or ActiveMQ's data, a storage element's files, nor any table of the grid's PostgreSQL
database (Rucio's, the transfer service's, the dispatcher's, the probes' and the dashboard's schemas) or of the
condition data on MariaDB. The credential files themselves are readable by their owner only.

Two tables are Rucio's by design: `rucio.tokens`, its session store, keeps every token its REST API accepted (its
own userpass tokens and the JWTs users present), so that the next call is a lookup; `rucio.oauth_requests` keeps
the token a login got until the login is finished. A JWT found there must have Rucio among its audiences
(docs/security.md, "Tokens at rest")."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from juno_dcs.grid.home import GridHome
from tests.conftest import Grid
from tests.e2e.at_rest import files_under, loose_credentials, scan_file, scan_mariadb, scan_postgres
from tests.e2e.stories import DataTakingDay, MonteCarloProduction, UserTask

pytestmark = [pytest.mark.grid, pytest.mark.e2e, pytest.mark.last]
RUCIO_SESSIONS = {"rucio.tokens": "token", "rucio.oauth_requests": "redirect_msg"}  # table: its token's column


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def test_the_scanner_sees_a_token_wherever_it_is(grid: Grid, tmp_path: Path) -> None:
    """The scan below is only as good as its pattern: a real token of the grid, planted across a chunk boundary
    of a large file, is found."""
    token = grid.token("alice").encode()
    planted = tmp_path / "planted.log"
    planted.write_bytes(b"x" * (8 * 1024 * 1024 - 100) + b" Authorization: Bearer " + token + b"\n")
    assert [f.token for f in scan_file(planted)] == [token[:24].decode()]


@pytest.mark.timeout(1800)
def test_no_token_at_rest_after_the_stories(grid: Grid, data_taking_day: DataTakingDay,
                                            production: MonteCarloProduction, user_task: UserTask) -> None:
    data_taking_day.wait()
    production.wait()
    user_task.wait()
    home = GridHome(grid.home)
    state = home.load_state()
    credentials = [home.secrets, home.run / "tokens"]  # the issuer's keys and clients, each account's token

    loose = [bad for d in credentials if d.exists() for bad in loose_credentials(d)]
    assert loose == [], f"credential files others may read: {loose}"

    roots = {home.root, home.service_root}  # the service users' area, when the home is private
    files = [p for root in roots for p in files_under(root, skip=set(credentials))]
    assert len(files) > 100, files  # logs, configurations, Kafka's and ActiveMQ's data, the SEs' files
    in_files = [f for p in files for f in scan_file(p)]
    assert in_files == [], "tokens at rest in files:\n" + "\n".join(map(str, in_files))

    url = make_conninfo(state.pg_admin_url, dbname=state.db_name)  # as the superuser: every schema's tables
    in_tables, n_tables = scan_postgres(url)
    assert n_tables > 50, n_tables  # Rucio's schema and the project's
    elsewhere = [f for f in in_tables if f.where not in RUCIO_SESSIONS]
    assert elsewhere == [], "tokens at rest in tables:\n" + "\n".join(map(str, elsewhere))
    with psycopg.connect(url) as conn:
        rucio_session_jwts = [row[0] for table, column in RUCIO_SESSIONS.items() for row in conn.execute(
            f"SELECT {column} FROM {table} WHERE {column} LIKE 'eyJ%'")]  # noqa: S608 - names of this module
    for token in rucio_session_jwts:
        audience = _claims(token)["aud"]
        assert "rucio" in (audience if isinstance(audience, list) else [audience]), audience

    in_conditions, n_conditions = scan_mariadb(state.conditions_db)
    assert n_conditions > 0
    assert in_conditions == [], "tokens at rest in the condition data:\n" + "\n".join(map(str, in_conditions))
