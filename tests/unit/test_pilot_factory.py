"""The pilot factory: its arithmetic, its configuration, the local process backend and two factories at once."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from juno_dcs.errors import ConfigError
from juno_dcs.pilot.backend import LocalProcessBackend
from juno_dcs.pilot.config import FactoryConfig, load_config
from juno_dcs.pilot.factory import Factory, PilotSlot, QueueLocks, QueueState, pilots_to_start, slot_for

# a stand-in pilot: sleeps whatever arguments the backend gives it, and says what it got
SLEEPER = [sys.executable, "-c", "import os, sys, time; print(sys.argv[1:], os.environ.get('JUNO_CONDITIONS_URLS'), "
                                 "flush=True); time.sleep(60)"]


def queue(activated: int = 0, running: int = 0, *, cores: int = 16, online: bool = True, **jobs: int) -> QueueState:
    return QueueState(queue="IHEP", site="IHEP", online=online, cores=cores, memory_mb_per_core=400,
                      walltime_s=7200, rse="IHEP_DISK", jobs={"activated": activated, "running": running, **jobs})


@pytest.mark.parametrize(("state", "running", "max_pilots", "pilot_cores", "expected"), [
    (queue(0), 0, 4, 1, 0),                       # no work, no pilots
    (queue(10), 0, 4, 1, 4),                      # capped by max_pilots
    (queue(2), 0, 4, 1, 2),                       # as many as activated jobs
    (queue(10, cores=3), 0, 8, 1, 3),             # capped by the queue's cores
    (queue(10, cores=8), 0, 8, 4, 2),             # cores / pilot cores
    (queue(10, running=2), 2, 4, 1, 2),           # busy pilots count against the cap
    (queue(3, running=2), 2, 8, 1, 3),            # busy pilots do not absorb activated jobs
    (queue(3), 2, 8, 1, 1),                       # two pilots starting up will take two of the three
    (queue(1), 3, 8, 1, 0),                       # more idle pilots than work: nothing new (they exit by themselves)
    (queue(5, running=6), 4, 8, 1, 4),            # leased jobs of pilots that are gone do not block new ones
    (queue(5, online=False), 0, 8, 1, 0),         # offline queue
    (queue(5), 0, 0, 1, 0),                       # disabled by max_pilots 0
    (queue(5, sent=1, starting=1, holding=1), 3, 4, 1, 1),  # every leased state is a busy pilot
])
def test_pilots_to_start(state: QueueState, running: int, max_pilots: int, pilot_cores: int, expected: int) -> None:
    assert pilots_to_start(state, running, max_pilots, pilot_cores) == expected


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "factory.yaml"
    path.write_text(text)
    return path


def base_config(tmp_path: Path, **extra: Any) -> FactoryConfig:
    return FactoryConfig.model_validate({"dispatcher_url": "http://127.0.0.1:1", "rucio_configs": str(tmp_path),
                                         "work_root": str(tmp_path / "work"), **extra})


def test_config_loads_with_defaults(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"""
dispatcher_url: http://127.0.0.1:27050
rucio_configs: {tmp_path}
work_root: {tmp_path}/work
queues:
  IHEP: {{max_pilots: 4}}
  MSU: {{enabled: false}}
conditions_urls:
  IHEP: [http://127.0.0.1:27041, http://127.0.0.1:27040]
""")
    config = load_config(path)
    assert config.max_pilots("IHEP") == 4
    assert config.max_pilots("CNAF") == config.default_max_pilots == 2
    assert config.serves("CNAF")
    assert not config.serves("MSU")
    assert config.sleep_s == 10
    assert config.pilot_lifetime_s == 3600


@pytest.mark.parametrize(("text", "message"), [
    ("rucio_configs: /x\nwork_root: /y\n", "dispatcher_url: Field required"),
    ("dispatcher_url: u\nrucio_configs: /x\nwork_root: /y\nsleep_s: 0\n", "sleep_s: Input should be greater than 0"),
    ("dispatcher_url: u\nrucio_configs: /x\nwork_root: /y\nqueues: {IHEP: {max_pilots: -1}}\n",
     "queues.IHEP.max_pilots"),
    ("dispatcher_url: u\nrucio_configs: /x\nwork_root: /y\nmax_pilot: 3\n", "max_pilot: Extra inputs are not"),
    ("dispatcher_url: u\nrucio_configs: /x\nwork_root: /y\nconditions_urls: {IHEP: http://a}\n",
     "conditions_urls.IHEP"),
    ("dispatcher_url: [unclosed\n", "cannot read the pilot factory configuration"),
])
def test_config_errors_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=r"factory\.yaml") as caught:
        load_config(path)
    assert message in str(caught.value)


def test_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_only_listed_queues(tmp_path: Path) -> None:
    config = base_config(tmp_path, only_listed_queues=True, queues={"IHEP": {}})
    assert config.serves("IHEP")
    assert not config.serves("CNAF")


def test_slot_memory_from_the_queue(tmp_path: Path) -> None:
    config = base_config(tmp_path, queues={"IHEP": {"pilot_cores": 2}}, pilot_lifetime_s=600)
    assert slot_for(queue(1), config) == PilotSlot("IHEP", "IHEP", 2, 800, 7200, 600)
    half = base_config(tmp_path, memory_scale=0.5)
    assert slot_for(queue(1), half).memory_mb == 200


def test_queue_lock_is_exclusive(tmp_path: Path) -> None:
    a, b = QueueLocks(tmp_path), QueueLocks(tmp_path)
    with a.hold("IHEP") as first:
        assert first
        with b.hold("IHEP") as second, b.hold("CNAF") as other:
            assert not second
            assert other
    with b.hold("IHEP") as again:
        assert again


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[list[LocalProcessBackend]]:
    made: list[LocalProcessBackend] = []
    yield made
    for backend in made:
        for proc in backend._children.values():
            proc.kill()
            proc.wait()


def sleeper_config(tmp_path: Path, **extra: Any) -> FactoryConfig:
    return base_config(tmp_path, pilot_command=SLEEPER, stop_grace_s=1,
                       conditions_urls={"IHEP": ["http://squid:1", "http://origin:2"]}, **extra)


def test_local_backend_submit_running_kill(tmp_path: Path, backends: list[LocalProcessBackend]) -> None:
    config = sleeper_config(tmp_path)
    backend = LocalProcessBackend(config)
    backends.append(backend)
    ids = backend.submit(slot_for(queue(2), config), 2)
    assert len(ids) == 2
    assert backend.running("IHEP") == 2
    assert backend.running("CNAF") == 0
    log = config.work_root / "logs" / f"{ids[0]}.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not log.read_text():
        time.sleep(0.1)
    text = log.read_text()
    for expected in ("'run'", "'--site', 'IHEP'", "'--memory-mb', '400'", "'--walltime-s', '7200'",
                     f"'--pilot-id', '{ids[0]}'", f"'--rucio-configs', '{tmp_path}'", "http://squid:1,http://origin:2"):
        assert expected in text
    assert backend.kill("IHEP", [ids[0]]) == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and backend.running("IHEP") != 1:
        time.sleep(0.1)
    assert backend.running("IHEP") == 1
    assert not (config.work_root / "factory" / "pilots" / "IHEP" / f"{ids[0]}.json").exists()
    assert not (config.work_root / "IHEP" / ids[0]).exists()


def test_sigkill_after_grace(tmp_path: Path, backends: list[LocalProcessBackend]) -> None:
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                      "time.sleep(60)"]
    config = base_config(tmp_path, pilot_command=stubborn, stop_grace_s=0.5)
    backend = LocalProcessBackend(config)
    backends.append(backend)
    backend.submit(slot_for(queue(1), config), 1)
    time.sleep(0.5)
    assert backend.kill("IHEP") == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and backend.running("IHEP"):
        time.sleep(0.2)
    assert backend.running("IHEP") == 0


class FakeDispatcher:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def queues(self) -> list[dict[str, Any]]:
        return self.rows


def test_two_factories_do_not_double_the_pilots(tmp_path: Path, backends: list[LocalProcessBackend]) -> None:
    config = sleeper_config(tmp_path, default_max_pilots=3)
    rows = [queue(5).model_dump(), {**queue(1).model_dump(), "queue": "CNAF", "site": "CNAF"}]
    factories = []
    for _ in range(2):
        backend = LocalProcessBackend(config)
        backends.append(backend)
        factories.append(Factory(config, FakeDispatcher(rows), backend,  # type: ignore[arg-type]
                                 QueueLocks(config.work_root / "factory")))
    assert factories[0].run_once() == {"IHEP": 3, "CNAF": 1}
    assert factories[1].run_once() == {"IHEP": 0, "CNAF": 0}
    assert backends[1].running("IHEP") == 3
    # while one holds a queue's lock, the other leaves that queue alone
    with QueueLocks(config.work_root / "factory").hold("IHEP"):
        assert factories[1].run_once() == {"CNAF": 0}
    # a pilot ends: the other factory replaces it
    first = next(iter(backends[0]._children.values()))
    os.kill(first.pid, signal.SIGTERM)
    first.wait()
    assert factories[1].run_once() == {"IHEP": 1, "CNAF": 0}
    assert backends[0].running("IHEP") == 3


def test_factory_skips_disabled_and_offline(tmp_path: Path, backends: list[LocalProcessBackend]) -> None:
    config = sleeper_config(tmp_path, queues={"CNAF": {"enabled": False}})
    backend = LocalProcessBackend(config)
    backends.append(backend)
    rows = [queue(5, online=False).model_dump(), {**queue(1).model_dump(), "queue": "CNAF", "site": "CNAF"}]
    factory = Factory(config, FakeDispatcher(rows), backend,  # type: ignore[arg-type]
                      QueueLocks(config.work_root / "factory"))
    assert factory.run_once() == {"IHEP": 0}


def test_factories_per_node_serve_their_sites_only(tmp_path: Path, backends: list[LocalProcessBackend]) -> None:
    from juno_dcs.pilot.factory import SiteFilter

    config = sleeper_config(tmp_path, default_max_pilots=2)
    rows = [queue(1).model_dump(), {**queue(1).model_dump(), "queue": "CNAF", "site": "CNAF"},
            {**queue(1).model_dump(), "queue": "MSU", "site": "MSU"}]
    made = []
    for sites in (SiteFilter(skip=frozenset({"CNAF"})), SiteFilter(only=frozenset({"CNAF"}))):
        backend = LocalProcessBackend(config)
        backends.append(backend)
        made.append(Factory(config, FakeDispatcher(rows), backend,  # type: ignore[arg-type]
                            QueueLocks(config.work_root / "factory"), sites))
    assert made[0].run_once() == {"IHEP": 1, "MSU": 1}  # the central node's: every site but the other node's
    assert made[1].run_once() == {"CNAF": 1}


def test_a_site_both_served_and_skipped_is_refused(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from juno_dcs.pilot.__main__ import main

    result = CliRunner().invoke(main, ["factory", "--config", str(tmp_path / "f.yaml"), "--site", "CNAF",
                                       "--skip-site", "CNAF"])
    assert result.exit_code == 2
    assert "CNAF both served and skipped" in result.output
