"""Pure pieces of the launcher: ports, state, rendering, supervisor sections, the CA, probe conventions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from juno_dcs.errors import ConfigError, GridStateError
from juno_dcs.grid import pki
from juno_dcs.grid.home import GridHome
from juno_dcs.grid.ports import OFFSETS, PortMap
from juno_dcs.grid.programs import CONVEYOR_DAEMONS, RUCIO_DAEMONS, grid_programs
from juno_dcs.grid.render import render, write_if_changed
from juno_dcs.settings import GridSettings
from juno_probes.nagios import Result, Status, threshold, worst


def test_ports_derive_from_the_base() -> None:
    ports = PortMap(25000)
    assert (ports.rucio, ports.supervisor, ports.activemq_stomp) == (25000, 25001, 25002)
    assert max(OFFSETS.values()) < 100


@pytest.mark.parametrize("base", [80, 0, 65500])
def test_bad_base_port(base: int) -> None:
    with pytest.raises(ConfigError, match="--base-port"):
        PortMap(base)


def test_state_round_trip_and_passwords(tmp_path: Path) -> None:
    home = GridHome(tmp_path / "g")
    state = home.new_state(25000, "postgresql://postgres@127.0.0.1:5432/postgres").with_accounts(["root", "alice"])
    home.save_state(state)
    assert (home.state_file.stat().st_mode & 0o777) == 0o600
    loaded = home.load_state()
    assert loaded == state
    assert loaded.password("root") == state.root_password
    again = loaded.with_accounts(["root", "alice", "bob"])
    assert again.password("alice") == state.password("alice")  # kept
    with pytest.raises(ConfigError, match="unknown account 'mallory'"):
        again.password("mallory")
    assert home.tag == GridHome(tmp_path / "g").tag != GridHome(tmp_path / "h").tag


def test_missing_and_broken_state(tmp_path: Path) -> None:
    home = GridHome(tmp_path)
    with pytest.raises(GridStateError, match="no grid here"):
        home.load_state()
    home.state_file.write_text(json.dumps({"base_port": "x"}))
    with pytest.raises(GridStateError, match="unreadable grid state"):
        home.load_state()


def test_render_and_write_if_changed(tmp_path: Path) -> None:
    tpl = tmp_path / "t.cfg"
    tpl.write_text("port = ${port}\n")
    assert render(tpl, {"port": 1}) == "port = 1\n"
    with pytest.raises(ConfigError, match=r"no value for placeholder \$\{port\}"):
        render(tpl, {})
    out = tmp_path / "out" / "t.cfg"
    assert write_if_changed(out, "a") is True
    assert write_if_changed(out, "a") is False
    assert write_if_changed(out, "b") is True


def test_program_sections(tmp_path: Path) -> None:
    home = GridHome(tmp_path)
    state = home.new_state(25000, "postgresql://postgres@127.0.0.1:5432/postgres")
    programs = grid_programs(home, state, GridSettings(), {"rucio": "abc"}, ["IHEP_DISK", "CNAF_DISK"])
    names = {p.name for p in programs}
    assert {"activemq", "rucio-server", "xrootd-IHEP_DISK", "xrootd-CNAF_DISK", "fts-server", "fts-worker",
            "zookeeper", "kafka", "ingest", "conditions", "db-stats", "memcached"} | {
        f"rucio-{d}" for d in (*RUCIO_DAEMONS, *CONVEYOR_DAEMONS)} == names
    xrootd = next(p for p in programs if p.name == "xrootd-IHEP_DISK")
    assert xrootd.command[:5] == ["/usr/bin/xrootd", "-R", "xrootd", "-I", "v4"]
    assert xrootd.environment["LD_PRELOAD"].endswith("bind_loopback.so")
    server = next(p for p in programs if p.name == "rucio-server")
    section = server.section(home)
    assert "127.0.0.1:25000" in section
    assert 'JUNO_DCS_CONFIG_DIGEST="abc"' in section
    assert "stopasgroup = true" in section


def test_ca_and_host_certificate(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    assert pki.ensure_ca(ca) is True
    assert pki.ensure_ca(ca) is False  # idempotent
    assert any(p.name.endswith(".0") for p in pki.cert_dir(ca).iterdir())
    assert sorted(p.name for p in pki.cert_dir(ca).iterdir() if not p.name.endswith(".0")) == ["ca.pem"]
    cert, key = tmp_path / "host.pem", tmp_path / "host.key"
    assert pki.issue_host_cert(ca, cert, key) is True
    assert pki.issue_host_cert(ca, cert, key) is False
    verify = subprocess.run(["openssl", "verify", "-CApath", str(pki.cert_dir(ca)), str(cert)],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stderr


def test_nagios_conventions() -> None:
    assert [int(s) for s in Status] == [0, 1, 2, 3]
    assert worst(Status.OK, Status.WARNING, Status.UNKNOWN) is Status.WARNING
    assert worst(Status.CRITICAL, Status.WARNING) is Status.CRITICAL
    assert threshold(0.5, 1, 5) is Status.OK
    assert threshold(2, 1, 5) is Status.WARNING
    assert threshold(5, 1, 5) is Status.CRITICAL
    line = Result(Status.OK, "fine", {"t": "1s"}).line("rucio")
    assert line == "RUCIO OK - fine | t=1s"


def test_rse_protocols_xrootd_and_posix(tmp_path: Path) -> None:
    from juno_dcs.grid import storage

    home = GridHome(tmp_path)
    davs, root = storage.protocols(home, GridSettings(), "CNAF_DISK", 25012)
    assert (davs["scheme"], davs["port"], davs["domains"]["wan"]["third_party_copy_write"]) == ("davs", 25012, 1)
    assert root["scheme"] == "root"
    assert (root["domains"]["wan"]["write"], davs["domains"]["wan"]["write"]) == (2, 1)  # davs first, root by name
    assert root["domains"]["wan"]["third_party_copy_write"] is None  # None, not 0: Rucio would try a 0 first
    [posix] = storage.protocols(home, GridSettings(storage="posix"), "CNAF_DISK", None)
    assert posix["scheme"] == "file"
    assert posix["prefix"] == f"{home.rse_dir('CNAF_DISK')}/"


def test_rucio_s_cache_listens_on_its_own_socket_only(tmp_path: Path) -> None:
    from juno_dcs.grid import cache

    home = GridHome(tmp_path / "home")
    command = cache.command(home)
    assert command[command.index("-s") + 1] == str(cache.socket_path(home))  # -s: no TCP, no UDP
    assert command[command.index("-a") + 1] == "0600"
    assert cache.url(home) == f"unix:{cache.socket_path(home)}"
    assert len(str(cache.socket_path(home)).encode()) <= 107
    where = cache.prepare(home)
    assert where.stat().st_mode & 0o777 == 0o700
    assert cache.prepare(home) == where  # idempotent
    assert cache.uncached_url(home).startswith(f"unix:{where}/")  # the reaper's: where nothing listens
    assert cache.flush(home) is False  # no memcached on the socket: nothing to empty, no error
    where.rmdir()
    state = home.new_state(25000, "postgresql://postgres@127.0.0.1:5432/postgres")
    programs = {p.name: p for p in grid_programs(home, state, GridSettings(), {}, ["IHEP_DISK"])}
    assert programs["rucio-reaper"].environment["RUCIO_CONFIG"] == str(home.rucio_reaper_cfg)
    assert programs["rucio-judge-evaluator"].environment["RUCIO_CONFIG"] == str(home.rucio_daemons_cfg)
    assert programs["memcached"].priority < programs["rucio-server"].priority


def test_a_cache_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    import os

    from juno_dcs.errors import GridStateError
    from juno_dcs.grid import cache

    if os.geteuid() != 0:
        pytest.skip("only root can give the directory to another user")
    home = GridHome(tmp_path / "other")
    where = cache.socket_dir(home)
    where.mkdir(mode=0o700)
    try:
        os.chown(where, 65534, 65534)  # someone else made it first, in the shared /tmp
        with pytest.raises(GridStateError, match="belongs to another user"):
            cache.prepare(home)
    finally:
        where.rmdir()
