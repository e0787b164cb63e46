"""The connection budget's arithmetic and its refusal message (grid/budget.py); the refusal of a real `up` is in
tests/integration/test_grid_lifecycle.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from juno_dcs.errors import GridStateError
from juno_dcs.grid import budget
from juno_dcs.grid.home import GridHome
from juno_dcs.grid.launcher import load_valid_topology, write_configs
from juno_dcs.grid.programs import RUCIO_DAEMON_POOL, RUCIO_SERVER_POOL, Program
from juno_dcs.settings import GridSettings


def test_free_slots_give_back_what_the_grid_already_holds() -> None:
    slots = budget.Slots(max_connections=100, reserved=3, in_use=40, held_by_grid=30)
    assert slots.free == 87
    assert budget.Slots(max_connections=100, reserved=3, in_use=40, held_by_grid=0).free == 57


def test_shares_leave_out_programs_without_a_database() -> None:
    programs = [Program("a", ["x"], pg_connections=3), Program("b", ["x"]), Program("c", ["x"], pg_connections=1)]
    assert budget.shares(programs) == {"a": 3, "c": 1}


def test_a_grid_that_fits_is_not_refused() -> None:
    budget.check({"a": 50, "b": 7}, budget.Slots(100, 3, 40, 0), "db:5432")


def test_a_grid_that_does_not_fit_is_refused_with_the_numbers() -> None:
    shares = {"rucio-server": 6, "fts-worker": 9, "rucio-reaper": 3, "dashboard": 4}
    with pytest.raises(GridStateError) as refused:
        budget.check(shares, budget.Slots(max_connections=100, reserved=3, in_use=80, held_by_grid=0), "db:5432")
    text = str(refused.value)
    assert "PostgreSQL at db:5432 has 17 free connection slots and this grid's programs may open 22" in text
    assert "max_connections 100 - 3 reserved for superusers - 80 in use = 17" in text
    assert "fts-worker 9, rucio-server 6, dashboard 4, rucio-reaper 3" in text
    assert "Nothing was started" in text


def test_the_rendered_configs_carry_the_pools_the_budget_counts(tmp_path: Path) -> None:
    settings = GridSettings(home=tmp_path / "g")
    topo = load_valid_topology(settings)
    home = GridHome(settings.home)
    state = home.new_state(25000, settings.pg_admin_url).with_accounts(list(topo.accounts))
    home.make_dirs()
    _, programs = write_configs(home, state, settings, topo, list(topo.rses), [])
    server = home.rucio_cfg.read_text()
    daemons = home.rucio_daemons_cfg.read_text()
    assert f"pool_size = {RUCIO_SERVER_POOL.size}\nmax_overflow = {RUCIO_SERVER_POOL.overflow}\n" in server
    assert f"pool_size = {RUCIO_DAEMON_POOL.size}\nmax_overflow = {RUCIO_DAEMON_POOL.overflow}\n" in daemons
    shares = budget.shares(programs)
    by_name = {p.name: p for p in programs}
    assert by_name["rucio-judge-evaluator"].environment["RUCIO_CONFIG"] == str(home.rucio_daemons_cfg)
    assert by_name["rucio-reaper"].environment["RUCIO_CONFIG"] == str(home.rucio_reaper_cfg)  # uncached
    reaper = home.rucio_reaper_cfg.read_text()
    assert f"pool_size = {RUCIO_DAEMON_POOL.size}\nmax_overflow = {RUCIO_DAEMON_POOL.overflow}\n" in reaper
    assert by_name["rucio-server"].environment["RUCIO_CONFIG"] == str(home.rucio_cfg)
    assert shares["rucio-server"] == settings.rucio_workers * RUCIO_SERVER_POOL.cap
    assert shares["rucio-conveyor-submitter"] == RUCIO_DAEMON_POOL.cap
    transfer = (home.etc / "transfer.yaml").read_text()
    assert "db_connections: 8" in transfer
    assert "api_db_connections: 4" in transfer
    assert shares["fts-worker"] == 9
    assert shares["fts-server"] == 8
    assert shares["ingest"] == 1  # its heartbeats (juno_dcs.heartbeat)
    assert f"heartbeat_db: postgresql://{state.db_user}:" in (home.etc / "ingest.yaml").read_text()
    assert "conditions" not in shares
    assert 60 <= sum(shares.values()) <= 110, shares


def test_the_server_answers_its_per_file_lookups_from_its_file(tmp_path: Path) -> None:
    """Rucio reads [core] geoip_ignore_error and a client site's [clientcachemap] and [root-proxy-internal] entries
    once per file it lists; in rucio.cfg they never reach the cache: every site of the topology and ROAMING."""
    import configparser

    settings = GridSettings(home=tmp_path / "g")
    topo = load_valid_topology(settings)
    home = GridHome(settings.home)
    state = home.new_state(25000, settings.pg_admin_url).with_accounts(list(topo.accounts))
    home.make_dirs()
    write_configs(home, state, settings, topo, list(topo.rses), [])
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(home.rucio_cfg)
    assert cfg.getboolean("core", "geoip_ignore_error")
    for section in ("clientcachemap", "root-proxy-internal"):
        for site in ("ROAMING", *topo.sites):
            assert cfg.get(section, site) == ""
