"""The grid's configuration files as versioned Docker configs and secrets (juno_dcs.swarm.configs): which files a
service reads, found from what it names; a changed file a new name; files only their owner reads as secrets. The
rollback that brings back a service's previous configuration is tests/swarm/test_stack.py."""

from __future__ import annotations

import os
from pathlib import Path

from juno_dcs.swarm import configs


def tree(root: Path) -> Path:
    etc = root / "etc"
    (etc / "activemq").mkdir(parents=True)
    (etc / "clients").mkdir()
    (etc / "rucio.cfg").write_text("[database]\ndefault = postgresql://x\n")
    (etc / "rucio.cfg.bak").write_text("old\n")
    (etc / "transfer.yaml").write_text(f"rucio_config: {etc / 'rucio.cfg'}\n")
    (etc / "activemq" / "activemq.xml").write_text("<beans/>\n")
    (etc / "activemq" / "log4j.properties").write_text("x=1\n")
    (etc / "pilots.yaml").write_text(f"rucio_configs: {etc / 'clients'}\n")
    (etc / "clients" / "alice.cfg").write_text("[client]\n")
    (etc / "stack.yml").write_text("services: {}\n")
    (etc / "big.bin").write_bytes(b"\xff\xfe" * 10)
    os.chmod(etc / "rucio.cfg", 0o600)
    os.chmod(etc / "transfer.yaml", 0o644)
    return etc


def test_a_service_gets_the_files_it_names_and_what_they_name(tmp_path: Path) -> None:
    etc = tree(tmp_path)
    files = configs.candidates([etc])
    assert etc / "stack.yml" not in files  # read by `up`, not by a service
    assert etc / "big.bin" not in files  # not text
    wide = [etc, tmp_path]
    # a file named on the command line, and the one it names in turn; not the longer name that starts the same
    assert configs.read_by(["juno-fts serve --config", str(etc / "transfer.yaml")], files, wide) == [
        etc / "rucio.cfg", etc / "transfer.yaml"]
    # a directory named: every file in it
    assert configs.read_by([f"-Dactivemq.conf={etc / 'activemq'}"], files, wide) == [
        etc / "activemq" / "activemq.xml", etc / "activemq" / "log4j.properties"]
    assert configs.read_by([str(etc / "pilots.yaml")], files, wide) == [etc / "clients" / "alice.cfg",
                                                                         etc / "pilots.yaml"]
    # the home or its etc named as such is too wide to mean "every file"
    assert configs.read_by([f"--home {tmp_path}", f"--etc {etc}"], files, wide) == []
    assert configs.read_by(["nothing here"], files, wide) == []


def test_configs_carry_owner_and_mode_and_files_only_the_owner_reads_are_secrets(tmp_path: Path) -> None:
    etc = tree(tmp_path)
    files = configs.candidates([etc])
    services = {"fts-server": {"command": ["/x/juno-fts", "--config", str(etc / "transfer.yaml")],
                               "environment": {}},
                "rucio-server": {"command": ["/x/gunicorn"], "environment": {"RUCIO_CONFIG": str(etc / "rucio.cfg")}},
                "kafka": {"command": ["/x/kafka"], "environment": {}}}
    out = configs.attach(services, files, [etc, tmp_path])
    transfer, rucio = files[etc / "transfer.yaml"], files[etc / "rucio.cfg"]
    assert out.configs == {transfer.name: {"file": str(etc / "transfer.yaml")}}
    assert out.secrets == {rucio.name: {"file": str(etc / "rucio.cfg")}}
    assert services["fts-server"]["configs"] == [{"source": transfer.name, "target": str(etc / "transfer.yaml"),
                                                  "uid": str(os.getuid()), "gid": str(os.getgid()), "mode": 0o644}]
    assert services["fts-server"]["secrets"][0]["target"] == str(etc / "rucio.cfg")
    assert services["rucio-server"]["secrets"][0]["mode"] == 0o600
    assert "configs" not in services["kafka"]
    assert "secrets" not in services["kafka"]


def test_a_changed_file_is_a_new_config_and_an_unchanged_one_keeps_its_name(tmp_path: Path) -> None:
    etc = tree(tmp_path)
    before = configs.candidates([etc])
    (etc / "transfer.yaml").write_text("workers: 3\n")
    after = configs.candidates([etc])
    assert after[etc / "transfer.yaml"].name != before[etc / "transfer.yaml"].name
    assert after[etc / "pilots.yaml"].name == before[etc / "pilots.yaml"].name
    # the same content at another path is another config (its target differs)
    (etc / "copy.yaml").write_text((etc / "pilots.yaml").read_text())
    assert configs.candidates([etc])[etc / "copy.yaml"].name != after[etc / "pilots.yaml"].name
