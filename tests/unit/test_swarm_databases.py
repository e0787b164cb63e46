"""A swarm grid's own PostgreSQL and MariaDB (juno_dcs.swarm.databases): their part of the stack file (named
volumes, the versioned secret, placement at the centre, health checks), which grids get them, and that their
password shows nowhere but in the files only the grid's owner reads. The deployment itself is tests/swarm/."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from juno_dcs.errors import GridStateError, ServiceError
from juno_dcs.grid import database, launcher
from juno_dcs.grid.home import GridHome
from juno_dcs.settings import GridSettings
from juno_dcs.swarm import databases, images
from juno_dcs.topology import load_topology

TOPOLOGY = Path(__file__).parents[2] / "daemons" / "src" / "juno_dcs" / "data" / "topology.yaml"
CHECKOUT = Path(__file__).parents[2]


@pytest.fixture
def home(tmp_path: Path) -> GridHome:
    return GridHome(tmp_path / "grid")


def settings_for(home: GridHome, **more: object) -> GridSettings:
    return GridSettings(home=home.root, topology=TOPOLOGY, **more)


def part(home: GridHome, password: str = "pw-one") -> tuple[dict[str, object], object]:  # noqa: S107
    state = home.new_state(25000, "postgresql://postgres@127.0.0.1:5432/postgres")
    state = databases.with_stack_databases(state.model_copy(update={"db_admin_password": password}))
    tags = {"postgres": "juno-dcs/postgres:1", "mariadb": "juno-dcs/mariadb:2"}
    return databases.render(state, home, databases.Placement(site="IHEP", images=tags)), state


def test_each_database_keeps_its_data_on_a_named_volume_at_the_centre(home: GridHome) -> None:
    spec, state = part(home)
    services = spec["services"]
    assert set(services) == {"postgres", "mariadb"}
    for name, svc in services.items():
        assert svc["image"] == f"juno-dcs/{name}:{1 if name == 'postgres' else 2}"
        assert svc["volumes"] == [{"type": "volume", "source": f"{name}-data", "target": databases.DATA_DIR[name]}]
        assert svc["deploy"]["placement"]["constraints"] == ["node.labels.juno.site.IHEP == true"]
        assert svc["deploy"]["replicas"] == 1
        assert svc["deploy"]["restart_policy"]["condition"] == "any"
        assert str(state.ports.port(name)) in svc["healthcheck"]["test"]
        assert svc["environment"]["JUNO_DCS_DB_PORT"] == str(state.ports.port(name))
    assert set(spec["volumes"]) == {"postgres-data", "mariadb-data"}
    assert databases.volume_names("juno-x") == ["juno-x_postgres-data", "juno-x_mariadb-data"]


def test_the_password_is_a_versioned_secret_and_in_no_stack_file(home: GridHome) -> None:
    one, state = part(home, "pw-one")
    two, _ = part(home, "pw-two")
    (name_one,), (name_two,) = one["secrets"], two["secrets"]
    assert name_one != name_two  # a new password is a new secret: Docker secrets cannot change
    assert one["secrets"][name_one] == {"file": str(databases.secret_file(home))}
    for svc in one["services"].values():
        assert svc["secrets"] == [{"source": name_one, "target": "db-admin", "mode": 0o400}]
    assert "pw-one" not in yaml.safe_dump(one)
    assert databases.write_secret(home, state)
    assert not databases.write_secret(home, state)  # idempotent
    assert databases.secret_file(home).read_text() == "pw-one"
    assert stat.S_IMODE(databases.secret_file(home).stat().st_mode) == 0o600
    assert stat.S_IMODE(home.secrets.stat().st_mode) == 0o700


def test_the_admin_urls_point_at_the_grids_own_ports_and_errors_do_not_show_the_password(home: GridHome) -> None:
    _, state = part(home, "s3cret-pw")
    assert state.databases == "stack"
    assert state.pg_admin_url == f"postgresql://postgres:s3cret-pw@127.0.0.1:{state.ports.port('postgres')}/postgres"
    assert state.mysql_admin_url == f"mysql+pymysql://root:s3cret-pw@127.0.0.1:{state.ports.port('mariadb')}/"
    assert database.shown(state.pg_admin_url) == (
        f"postgresql://postgres:***@127.0.0.1:{state.ports.port('postgres')}/postgres")
    assert database.shown("postgresql://postgres@127.0.0.1:5432/postgres") == \
        "postgresql://postgres@127.0.0.1:5432/postgres"
    with pytest.raises(ServiceError) as caught:
        database.admin_connect(f"postgresql://postgres:s3cret-pw@127.0.0.1:{state.ports.port('postgres') + 60}/x")
    assert "s3cret-pw" not in str(caught.value)
    assert "***" in str(caught.value)


def test_a_new_swarm_grid_gets_its_own_databases_unless_told_otherwise(home: GridHome) -> None:
    topo = load_topology(TOPOLOGY)
    state, created = launcher._resolve_state(home, settings_for(home, engine="swarm"), topo)
    assert created
    assert state.databases == "stack"
    assert state.mysql_admin_url is not None
    assert f":{state.ports.port('postgres')}/" in state.pg_admin_url
    servers, _ = launcher._resolve_state(home, settings_for(home, engine="swarm", swarm_databases="servers"), topo)
    assert servers.databases == "servers"
    assert servers.mysql_admin_url is None
    boxed, _ = launcher._resolve_state(home, settings_for(home), topo)
    assert boxed.databases == "servers"
    assert boxed.engine == "supervisor"


def test_a_grid_with_stack_databases_keeps_them(home: GridHome) -> None:
    topo = load_topology(TOPOLOGY)
    state, _ = launcher._resolve_state(home, settings_for(home, engine="swarm"), topo)
    home.save_state(state)
    again, created = launcher._resolve_state(
        home, settings_for(home, pg_admin_url="postgresql://postgres@127.0.0.1:5432/postgres"), topo)
    assert not created
    assert again.pg_admin_url == state.pg_admin_url
    with pytest.raises(GridStateError, match="runs under swarm only"):
        launcher._resolve_state(home, settings_for(home, engine="supervisor"), topo)


def test_the_databases_images_have_layers_of_their_own_and_a_digest_of_their_inputs(tmp_path: Path) -> None:
    assert set(images.OWN_ROLES) == set(databases.SERVICES)
    root = tmp_path / "checkout"
    (root / "docker").mkdir(parents=True)
    for role in images.OWN_ROLES:
        for name in (f"{role}.Dockerfile", f"{role}-entrypoint.sh"):
            (root / "docker" / name).write_bytes((CHECKOUT / "docker" / name).read_bytes())
        assert "FROM ${BASE}" in (root / "docker" / f"{role}.Dockerfile").read_text()
    before = images.own_digest(root, "postgres", "sha256:base1")
    assert images.own_digest(root, "postgres", "sha256:base1") == before
    assert images.own_digest(root, "postgres", "sha256:base2") != before  # a new base
    assert images.own_digest(root, "mariadb", "sha256:base1") != before
    (root / "docker" / "postgres-entrypoint.sh").write_text("#!/bin/sh\nexit 0\n")
    assert images.own_digest(root, "postgres", "sha256:base1") != before  # a changed entrypoint
