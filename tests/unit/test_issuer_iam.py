"""A site's IAM in place of the grid's issuer: configuration alone. Rendering every file of a grid with and without
`token_issuer` shows that what changes is the issuer's URL (and, with it, what vouches for the issuer's
certificate: the system's CA store instead of the grid CA), that the grid's own issuer is neither configured nor
run, and that its derived client secrets are not written: the IAM's are the operator's to put in place."""

from __future__ import annotations

import difflib
from pathlib import Path

from juno_dcs.grid import issuer
from juno_dcs.grid.home import GridHome
from juno_dcs.grid.launcher import load_valid_topology, render_configs
from juno_dcs.settings import GridSettings

IAM = "https://iam.juno.example.org/"


def _render(home: GridHome, settings: GridSettings, external: str | None) -> tuple[dict[Path, str], list[str]]:
    topo = load_valid_topology(settings)
    state = home.new_state(26000, settings.pg_admin_url).with_accounts(list(topo.accounts))
    state = state.model_copy(update={"token_issuer": external, "token_secret": "fixed", "db_password": "p",
                                     "root_password": "p", "supervisor_password": "p", "activemq_password": "p",
                                     "events_password": "p", "conditions_reader_password": "p",
                                     "conditions_writer_password": "p",
                                     "account_passwords": dict.fromkeys(state.account_passwords, "p")})
    rses = list(topo.rses)
    files, _, programs = render_configs(home, state, settings, topo, rses,
                                        [r for r in rses if topo.rse_type(r) == "TAPE"])
    return files, [p.name for p in programs]


def test_the_issuers_url_is_all_that_changes(tmp_path: Path) -> None:
    home = GridHome(tmp_path / "grid")
    settings = GridSettings(home=home.root, storage="posix")
    local, local_programs = _render(home, settings, None)
    site, site_programs = _render(home, settings, IAM)
    where = issuer.layout(home, home.new_state(26000, settings.pg_admin_url))
    own = f"https://127.0.0.1:{26000 + 33}/"
    # the grid's issuer, its clients and their derived secrets are gone; nothing else is
    gone = set(local) - set(site)
    assert gone == {where.config, where.clients} | {p for p in local if p.parent == where.secrets / "clients"}
    assert set(site) <= set(local)
    assert set(local_programs) - set(site_programs) == {"issuer"}
    for path in site:
        if path == home.supervisord_conf:  # the issuer's own section, and the digests of changed files
            continue
        before = local[path].replace(own, IAM)
        changed = [line for line in difflib.unified_diff(before.splitlines(), site[path].splitlines(), lineterm="")
                   if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        allowed = [line for line in changed
                   if "ca_file" in line  # the grid CA no longer vouches for the issuer
                   or "client_secret" in line]  # Rucio's client: the IAM's secret, not a derived one
        assert changed == allowed, (path, changed)
    assert IAM in site[home.etc / "transfer.yaml"]
    assert IAM in site[where.idpsecrets]
