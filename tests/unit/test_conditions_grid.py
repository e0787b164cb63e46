"""What the launcher gets from grid.conditions: ports, command lines, configs, database URLs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from juno_dcs.conditions.config import ServiceConfig
from juno_dcs.errors import ConfigError
from juno_dcs.grid import conditions as grid


def test_ports_follow_the_plan() -> None:
    assert grid.service_port(23000) == 23040
    assert grid.service_url(23000) == "http://127.0.0.1:23040"
    assert grid.squid_ports(23000, ["IHEP", "CNAF", "JINR"]) == {"IHEP": 23041, "CNAF": 23042, "JINR": 23043}
    with pytest.raises(ConfigError, match="room for 9"):
        grid.squid_ports(23000, [f"S{i}" for i in range(10)])


def test_squid_config(tmp_path: Path) -> None:
    text = grid.render_squid_config("IHEP", 23041, 23040, tmp_path / "squid" / "IHEP")
    assert "http_port 127.0.0.1:23041 accel defaultsite=conditions-ihep vhost" in text
    assert "cache_peer 127.0.0.1 parent 23040 0 no-query no-digest originserver" in text
    assert f"cache_dir ufs {tmp_path}/squid/IHEP/cache 256 16 256" in text
    assert f"pid_filename {tmp_path}/squid/IHEP/squid.pid" in text
    assert "never_direct allow all" in text
    assert "${" not in text
    listens = [line for line in text.splitlines() if line.startswith(("http_port", "cache_peer "))]
    assert all("127.0.0.1" in line for line in listens)


def test_squid_site_names_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Squid site"):
        grid.render_squid_config("IHEP\nhttp_port 0.0.0.0:80", 1, 2, tmp_path)


def test_commands(tmp_path: Path) -> None:
    assert grid.service_command(tmp_path / "c.yaml", 23040) == [
        sys.executable, "-m", "juno_dcs.conditions", "serve", "--config", str(tmp_path / "c.yaml"),
        "--host", "127.0.0.1", "--port", "23040", "--workers", "2"]
    squid = grid.SquidHome(tmp_path)
    assert grid.squid_command(squid.conf)[1:] == ["-N", "-f", str(tmp_path / "squid.conf")]


def test_configs_round_trip() -> None:
    url = grid.database_url("mysql+pymysql://root@127.0.0.1:3306/", "juno_cond", "r", "p@ss:/word")
    assert url == "mysql+pymysql://r:p%40ss%3A%2Fword@127.0.0.1:3306/juno_cond?charset=utf8mb4"
    service = ServiceConfig.model_validate(yaml.safe_load(grid.render_service_config(url, open_max_age=5)))
    assert (service.database_url, service.open_max_age) == (url, 5)
    assert yaml.safe_load(grid.render_admin_config(url)) == {"database_url": url}


@pytest.mark.parametrize(("args", "what"), [(("db-x", "r", "w"), "database"), (("db", "r;", "w"), "reader"),
                                            (("db", "r", "w'"), "writer")])
def test_database_identifiers_checked(args: tuple[str, str, str], what: str) -> None:
    name, reader, writer = args
    with pytest.raises(ConfigError, match=what):
        grid.ensure_database("mysql+pymysql://root@127.0.0.1:9/", name, reader, "p", writer, "p")
