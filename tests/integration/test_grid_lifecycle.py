"""up / status / down / env: idempotence, side-by-side grids, topology changes, bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import stomp

from juno_dcs.packaged import data_file
from tests.conftest import JUNO_DCS, Grid, free_base_port, run

PROGRAMS = {
    "activemq", "rucio-server", "rucio-judge-evaluator", "rucio-judge-repairer", "rucio-judge-cleaner",
    "rucio-judge-injector", "rucio-reaper", "rucio-undertaker", "rucio-abacus-account", "rucio-abacus-rse",
    "rucio-abacus-collection-replica", "rucio-transmogrifier", "rucio-hermes",
    "zookeeper", "kafka", "ingest", "conditions", "squid-IHEP", "squid-CNAF", "squid-JINR", "squid-IN2P3", "squid-MSU",
    "issuer", "fts-server", "fts-worker", "rucio-conveyor-submitter", "rucio-conveyor-poller",
    "rucio-conveyor-finisher",
    "rucio-conveyor-receiver", "wms-server", "wms-agent", "pilot-factory", "prodsys",
    "probes", "dashboard", "webui", "nginx", "db-stats", "watchdog", "memcached",
} | {f"xrootd-{rse}" for rse in ("IHEP_DISK", "IHEP_TAPE", "CNAF_DISK", "CNAF_TAPE", "JINR_DISK", "JINR_TAPE",
                                  "IN2P3_DISK", "IN2P3_TAPE", "MSU_DISK")}


def _pids(status: dict[str, Any]) -> dict[str, int]:
    return {name: proc["pid"] for name, proc in status["processes"].items()}


def test_status_names_every_process_and_service(grid: Grid) -> None:
    status = grid.status()
    assert status["running"], status
    assert status["healthy"], status
    assert set(status["processes"]) == PROGRAMS
    assert all(p["state"] == "RUNNING" for p in status["processes"].values())
    assert status["services"]["rucio"] == f"http://127.0.0.1:{grid.base_port}"
    assert status["services"]["fts"] == f"https://127.0.0.1:{grid.base_port + 30}"
    assert status["services"]["issuer"] == f"https://127.0.0.1:{grid.base_port + 33}/"
    assert status["services"]["dashboard"] == f"http://127.0.0.1:{grid.base_port + 60}/"
    assert status["services"]["webui"] == f"https://localhost:{grid.base_port + 61}/"
    assert all(h["ok"] for h in status["health"].values()), status["health"]
    assert status["down"] == {}
    assert {f"squid-{site}" for site in ("IHEP", "CNAF", "JINR", "IN2P3", "MSU")} <= set(status["health"])
    assert status["health"]["dashboard"]["ok"]
    assert status["health"]["storage"]["detail"] == "9 listening"
    assert set(status["storage"]) == {p.removeprefix("xrootd-") for p in PROGRAMS if p.startswith("xrootd-")}


def test_up_twice_changes_nothing(grid: Grid) -> None:
    before = _pids(grid.status())
    configs = {p: p.read_text() for p in (grid.home / "etc").rglob("*") if p.is_file()}
    out = grid.juno_dcs("up").stdout  # only --home: the base port is remembered
    assert "topology: 0 change(s)" in out, out
    for word in ("restarted", "added", "wrote"):
        assert word not in out, out
    assert _pids(grid.status()) == before
    assert {p: p.read_text() for p in (grid.home / "etc").rglob("*") if p.is_file()} == configs


def test_topology_change_is_applied_and_bad_topology_applies_nothing(grid: Grid, tmp_path: Path) -> None:
    text = (data_file("topology.yaml")).read_text()
    changed = tmp_path / "topology.yaml"
    changed.write_text(text.replace("bob:\n    IHEP_DISK: 2 TB", "bob:\n    IHEP_DISK: 3 TB"))
    out = grid.juno_dcs("up", "--topology", str(changed)).stdout
    assert "quota bob at IHEP_DISK = 3000000000000 bytes" in out
    assert "topology: 1 change(s)" in out

    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("bob:\n    IHEP_DISK: 2 TB", "bob:\n    IHEP_DISK: 5 TB\n    NOWHERE_DISK: 1 TB"))
    proc = grid.juno_dcs("up", "--topology", str(bad), check=False)
    assert proc.returncode == 2  # bad input
    assert "NOWHERE_DISK" in proc.stderr
    assert "nothing was applied" in proc.stderr
    env = grid.env("root")
    limits = run([str(Path(JUNO_DCS).parent / "rucio"), "account", "limit", "list", "bob"], env=env).stdout
    assert "3.000 TB" in limits or "3 TB" in limits or "3000000000000" in limits, limits

    grid.juno_dcs("up")  # back to the shipped topology
    out = grid.juno_dcs("up").stdout
    assert "topology: 0 change(s)" in out


def test_hermes_delivers_rucio_events_to_activemq(grid: Grid, tmp_path: Path) -> None:
    state = grid.state()
    received: list[str] = []

    class Listener(stomp.ConnectionListener):  # type: ignore[misc]
        def on_message(self, frame: Any) -> None:
            received.append(frame.body)

    conn = stomp.Connection12([("127.0.0.1", grid.base_port + 2)])
    conn.set_listener("test", Listener())
    conn.connect("hermes", state["activemq_password"], wait=True)
    conn.subscribe("/topic/rucio.events", id="1", ack="auto")
    try:
        name = f"hermes-{os.getpid()}-{time.time_ns()}"
        grid.rucio("did", "add", "--type", "dataset", f"user.alice:{name}", account="alice")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(name in body for body in received):
            time.sleep(0.5)
    finally:
        conn.disconnect()
    assert any(name in body for body in received), received[-5:]


def test_env_prints_exports_for_an_account(grid: Grid) -> None:
    out = grid.juno_dcs("env", "--account", "alice").stdout
    assert "export RUCIO_ACCOUNT=alice" in out
    assert "clients/alice.cfg" in out
    proc = grid.juno_dcs("env", "--account", "mallory", check=False)
    assert proc.returncode == 2  # bad input
    assert "unknown account 'mallory'" in proc.stderr


@pytest.mark.slow  # a second whole grid, up twice at once and down: about 4 minutes
@pytest.mark.timeout(900)  # two `up` of a second grid race for 10 minutes at most
def test_second_grid_runs_beside_the_first_and_down_leaves_nothing(grid: Grid, grid_tmp: Path) -> None:
    second = Grid(home=grid_tmp / "second", base_port=free_base_port())
    # two `up` at once on a new home: one builds the grid, the other waits and then finds nothing to do
    cmd = [JUNO_DCS, "up", "--home", str(second.home), "--base-port", str(second.base_port)]
    racers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=600) for r in racers]
    try:
        assert [r.returncode for r in racers] == [0, 0], outputs
        created = [out for out, _ in outputs if "grid created" in out]
        assert len(created) == 1, outputs
        assert sum("topology: 0 change(s)" in out for out, _ in outputs) == 1, outputs
        assert second.base_port != grid.base_port
        s2 = second.status()
        assert s2["healthy"], s2
        assert grid.status()["healthy"]
        pids = list(_pids(s2).values())
        supervisord = int((second.home / "run" / "supervisord.pid").read_text())
        second.juno_dcs("down")
        for pid in [*pids, supervisord]:
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"process {pid} survived down"
        stopped = second.juno_dcs("status", check=False)
        assert stopped.returncode == 3
        assert grid.status()["healthy"]  # the first grid did not notice
        # a stopped grid comes back with `up` on its remembered ports
        second.juno_dcs("up")
        assert second.status()["healthy"]
        cond_db = f"{second.state()['db_name']}_cond"
        assert _mariadb_has(cond_db)
    finally:
        second.juno_dcs("down", "--purge", check=False)
    assert not second.home.exists()
    assert not _mariadb_has(cond_db)  # --purge dropped the conditions database on MariaDB too


def _mariadb_has(database: str) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :n"),
                                {"n": database}).first() is not None
    finally:
        engine.dispose()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_busy_ports_are_refused(grid: Grid, tmp_path: Path) -> None:
    other = Grid(home=tmp_path / "clash", base_port=grid.base_port)
    proc = other.up(check=False)
    assert proc.returncode == 1
    assert "in use" in proc.stderr
    assert not (tmp_path / "clash" / "grid.json").exists()


def test_unreachable_postgresql_is_a_clear_error(grid_tmp: Path) -> None:
    tmp_path = grid_tmp
    base = free_base_port()
    env = dict(os.environ, JUNO_DCS_PG_ADMIN_URL=f"postgresql://postgres@127.0.0.1:{base + 99}/postgres")
    proc = run([JUNO_DCS, "up", "--home", str(tmp_path / "nopg"), "--base-port", str(base)], env=env, check=False)
    assert proc.returncode == 1
    assert f"PostgreSQL at postgresql://postgres@127.0.0.1:{base + 99}/postgres does not answer" in proc.stderr
    assert not (tmp_path / "nopg" / "run" / "supervisord.pid").exists()


def test_a_grid_that_would_not_fit_in_postgresqls_free_slots_is_refused_before_anything_starts(
        grid_tmp: Path) -> None:
    """Other clients take PostgreSQL's slots until one fewer is free than the grid's budget: `up` refuses with the
    numbers, starts nothing and makes no database; with those clients gone it would fit."""
    from juno_dcs.grid import budget
    from juno_dcs.grid.home import GridHome
    from juno_dcs.grid.launcher import load_valid_topology, write_configs
    from juno_dcs.settings import GridSettings

    home = grid_tmp / "crowded"
    settings = GridSettings(home=home)
    topo = load_valid_topology(settings)
    scratch = GridHome(grid_tmp / "render")  # the same programs as `up` would start, rendered aside
    scratch.make_dirs()
    _, programs = write_configs(scratch, scratch.new_state(free_base_port(), settings.pg_admin_url)
                                .with_accounts(list(topo.accounts)), settings, topo, list(topo.rses), [])
    need = sum(budget.shares(programs).values())
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    free = budget.read_slots(admin, "nobody").free
    assert free >= need, f"this machine's PostgreSQL cannot hold a grid at all ({free} free, {need} needed)"
    # 20 fewer than the budget: other grids of this machine that stop meanwhile do not make it fit
    crowd = [psycopg.connect(admin, autocommit=True) for _ in range(free - need + 20)]
    try:
        base = free_base_port()
        proc = run([JUNO_DCS, "up", "--home", str(home), "--base-port", str(base)], check=False)
        left = budget.read_slots(admin, "nobody").free
    finally:
        for conn in crowd:
            conn.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = re.search(r"has (\d+) free connection slots and this grid's programs may open (\d+): "
                     r"max_connections (\d+) - (\d+) reserved for superusers - (\d+) in use = (\d+)\.", proc.stderr)
    assert said is not None, proc.stderr
    slots, asked, most, reserved, in_use, equals = map(int, said.groups())
    assert asked == need
    assert slots == equals == most - reserved - in_use
    assert slots < need
    assert left < need
    assert "Nothing was started" in proc.stderr
    assert _processes_of(home) == []
    # nothing written either: no grid.json, no database, no service area
    assert not (home / "grid.json").exists()
    assert not (home / "service-area").exists()
    assert sorted(p.name for p in home.iterdir()) == ["run"]  # the launcher's lock


def test_a_home_deleted_by_hand_is_named_by_up_and_cleaned_by_down_purge(grid_tmp: Path) -> None:
    """`rm -rf HOME` leaves the grid's PostgreSQL role and database (and its MariaDB and service area) behind,
    with passwords nobody has any more: `up` at the same path says so and starts nothing; `down --purge` on the
    path drops them, after which `up` would start afresh."""
    from juno_dcs.grid.home import GridHome

    home = grid_tmp / "again"
    tag = GridHome(home).tag
    name = f"juno_dcs_{tag}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:  # what the deleted home's grid made
        conn.execute(f'CREATE ROLE "{name}" LOGIN PASSWORD \'gone\'')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
    area = Path("/var/lib/juno-dcs") / tag
    area.mkdir(parents=True)
    try:
        proc = run([JUNO_DCS, "up", "--home", str(home), "--base-port", str(free_base_port())], check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert (f"PostgreSQL already has the database {name} and role {name} of an earlier grid at {home}, "
                "whose grid.json (with their passwords) is gone. Nothing was started.") in proc.stderr, proc.stderr
        assert f"`juno-dcs down --purge --home {home}`" in proc.stderr
        assert not (home / "grid.json").exists()
        assert _processes_of(home) == []
        down = run([JUNO_DCS, "down", "--home", str(home), "--purge"], check=False)
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"removed the service area {area}" in down.stdout
        assert f"dropped databases {name} (PostgreSQL), {name}_cond (MariaDB)" in down.stdout
        assert not area.exists()
        with psycopg.connect(admin) as conn:
            left = conn.execute("SELECT (SELECT count(*) FROM pg_database WHERE datname = %s), "
                                "(SELECT count(*) FROM pg_roles WHERE rolname = %s)", (name, name)).fetchone()
        assert left == (0, 0)
        assert "no grid here" in run([JUNO_DCS, "down", "--home", str(home), "--purge"], check=False).stderr
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')
        if area.exists():
            area.rmdir()


def test_a_home_under_a_private_directory_runs(grid: Grid, tmp_path: Path) -> None:
    """The suite's grid lives under a mode-0700 directory (as in a clone in root's home or in `mktemp -d`): the
    xrootd, proxy and www-data users get their files in a service area, and a file uploads and transfers."""
    assert grid.home.parent.stat().st_mode & 0o777 == 0o700
    link = grid.home / "service-area"
    assert link.is_symlink()
    area = Path(os.readlink(link))
    assert area.parent == Path("/var/lib/juno-dcs")
    assert grid.rse_dir("IHEP_DISK").is_relative_to(area)
    payload = tmp_path / f"private-{uuid.uuid4().hex[:8]}.root"
    payload.write_bytes(os.urandom(4096))
    grid.rucio("upload", "--rse", "IHEP_DISK", "--scope", "user.alice", str(payload), account="alice")
    did = f"user.alice:{payload.name}"
    grid.rucio("rule", "add", did, "--copies", "1", "--rses", "CNAF_DISK", account="alice")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        copies = list(grid.rse_dir("CNAF_DISK").rglob(payload.name))
        if copies and copies[0].read_bytes() == payload.read_bytes():
            break
        time.sleep(2)
    else:
        raise AssertionError(f"{did} did not reach CNAF_DISK in {area}")


def _processes_of(home: Path) -> list[int]:
    """Processes whose command line names something under `home` (the grid's programs all do)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(home).encode() in argv and not _zombie(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.slow  # starts a second grid's programs twice: about 80 s
def test_a_failed_up_leaves_nothing_running_and_down_finds_a_supervisor_without_grid_json(grid_tmp: Path) -> None:
    home = grid_tmp / "half"
    base = free_base_port()
    # the services cannot be ready within 1 s: `up` fails after it started the supervisor
    env = dict(os.environ, JUNO_DCS_START_TIMEOUT="1")
    proc = run([JUNO_DCS, "up", "--home", str(home), "--base-port", str(base)], env=env, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not ready after 1 s" in proc.stderr
    assert "`up` stopped every program it had started" in proc.stderr
    assert _processes_of(home) == []
    state = json.loads((home / "grid.json").read_text())
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
        held = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
                            (state["db_user"],)).fetchone()
    assert held == (0,)
    # a supervisor left running for a home whose grid.json is gone: `down` still stops it and its programs
    subprocess.run([str(Path(JUNO_DCS).parent / "supervisord"), "-c", str(home / "etc" / "supervisord.conf")],
                   check=True)
    deadline = time.monotonic() + 60
    while len(_processes_of(home)) < 5 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(_processes_of(home)) >= 5
    saved = (home / "grid.json").read_text()
    (home / "grid.json").unlink()
    down = run([JUNO_DCS, "down", "--home", str(home)], check=False)
    assert down.returncode == 0, down.stderr
    assert "has no grid.json: stopped its supervisord" in down.stdout
    assert _processes_of(home) == []
    assert "no grid here" in run([JUNO_DCS, "down", "--home", str(home)], check=False).stderr
    (home / "grid.json").write_text(saved)
    run([JUNO_DCS, "down", "--home", str(home), "--purge"])


@pytest.mark.slow  # a program killed until the supervisor gives up, then the watchdog's restart
def test_a_program_the_supervisor_gives_up_on_raises_every_alarm_and_is_started_again(grid: Grid) -> None:
    """Killed at every start, a program goes FATAL: `status` names it and exits 1, the `programs` probe goes
    CRITICAL naming it, the dashboard's alarms panel shows that run; the watchdog then starts it again."""
    from juno_dcs.grid.home import GridHome, GridState
    from juno_dcs.grid.programs import supervisor_url
    from juno_dcs.grid.supervisor import Supervisor

    home = GridHome(grid.home)
    state = GridState.model_validate(grid.state())
    sup = Supervisor(home, state)
    dashboard = json.loads(grid.juno_dcs("status", "--json", check=False).stdout)["services"]["dashboard"]
    # as an operator runs it: the supervisor's URL from the 0600 file that probes.yaml names
    assert (home.etc / "supervisor.url").read_text().strip() == supervisor_url(state)
    assert (home.etc / "supervisor.url").stat().st_mode & 0o777 == 0o600
    probe_env = {k: v for k, v in os.environ.items() if k != "JUNO_DCS_SUPERVISOR_URL"}
    probe_env["RUCIO_CONFIG"] = str(home.client_cfg("root"))
    probe_cmd = [str(Path(JUNO_DCS).parent / "juno-probe"), "programs", "--config", str(home.etc / "probes.yaml")]
    name = "db-stats"
    # the grid's own scheduler would store a newer `programs` run over the one this test reads on the dashboard
    with grid.stopped("probes"):
        killed: list[int] = []
        deadline = time.monotonic() + 120
        while sup.process(name).state != "FATAL":  # killed at every start: the supervisor gives up after 5 retries
            assert time.monotonic() < deadline, f"{name} never went FATAL; killed {killed}"
            info = sup.process(name)
            if info.state in ("STARTING", "RUNNING") and info.pid and info.pid not in killed:
                os.kill(info.pid, 9)
                killed.append(info.pid)
            time.sleep(0.05)
        assert len(killed) >= 5
        # all three at once, within the 5 s before the watchdog's first restart
        home_args = ["--home", str(grid.home)]
        calls = {
            "json": subprocess.Popen([JUNO_DCS, "status", "--json", *home_args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True),
            "text": subprocess.Popen([JUNO_DCS, "status", *home_args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True),
            "probe": subprocess.Popen(probe_cmd, env=probe_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True),
        }
        out = {key: (call.communicate(timeout=120), call.returncode) for key, call in calls.items()}
        (json_out, _), json_rc = out["json"]
        assert json_rc == 1
        assert json.loads(json_out)["down"][name].startswith("FATAL")
        (_, text_err), text_rc = out["text"]
        assert text_rc == 1
        assert f"not running: {name}" in text_err
        (probe_out, probe_err), probe_rc = out["probe"]
        assert probe_rc == 2, probe_out + probe_err
        assert probe_out.startswith(f"PROGRAMS CRITICAL - {name} FATAL (Exited too quickly"), probe_out
        # the run is stored: the dashboard's alarms panel shows it (its cache lasts at most cache_s, 10 s)
        deadline = time.monotonic() + 60
        while True:
            panel = requests.get(f"{dashboard}/api/probes", timeout=10).json()["probes"]
            row = next((p for p in panel if p["probe"] == "programs"), None)
            if row is not None and row["status"] == "CRITICAL":
                break
            assert time.monotonic() < deadline, panel
            time.sleep(1)
        assert panel[0]["status"] == "CRITICAL"  # the worst first
        assert f"{name} FATAL" in row["message"]
        # the watchdog starts it again (after 5 s the first time)
        deadline = time.monotonic() + 120
        while sup.process(name).state != "RUNNING":
            assert time.monotonic() < deadline, f"{name} was not started again: {sup.process(name)}"
            time.sleep(1)
        assert f"{name} is FATAL" in (grid.home / "logs" / "watchdog.log").read_text()
