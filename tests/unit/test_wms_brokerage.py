"""Brokerage on the real topology (etc/topology.yaml) with an in-memory replica locator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from juno_dcs.packaged import data_file
from juno_dcs.topology import load_topology
from juno_dcs.wms.brokerage import Choice, Job, NoFit, Queue, ReplicaLocator, broker, output_rse, queues_from_topology
from juno_dcs.wms.logic import Invalid, check_spec
from juno_dcs.wms.models import JobSpec

CHECKOUT = Path(__file__).resolve().parents[2]


class MemoryLocator:
    def __init__(self, replicas: dict[str, set[str]]) -> None:
        self.replicas = replicas

    def locate(self, dids: Sequence[str]) -> dict[str, set[str]]:
        return {d: self.replicas[d] for d in dids if d in self.replicas}


@pytest.fixture(scope="module")
def queues() -> dict[str, Queue]:
    return queues_from_topology(load_topology(data_file("topology.yaml")), memory_scale=0.1)


def job(memory_mb: int = 200, cores: int = 1, walltime_s: int = 3600, inputs: tuple[str, ...] = (),
        site: str | None = None) -> Job:
    return Job(1, cores, memory_mb, walltime_s, inputs, site)


def test_queue_memory_is_scaled(queues: dict[str, Queue]) -> None:
    assert queues["CNAF"].memory_mb_per_core == 300  # 3 GB/core x 1000 x 0.1
    assert queues["JINR"].memory_mb_per_core == 1600
    assert queues["JINR"].walltime_s == 96 * 3600


def test_output_rse_is_own_disk_else_closest() -> None:
    topology = load_topology(data_file("topology.yaml"))
    assert output_rse(topology, "IHEP") == "IHEP_DISK"
    assert output_rse(topology, "SYSU-CLUSTER") == "CNAF_DISK"  # all at the default distance: by name


def test_big_memory_goes_to_jinr_only(queues: dict[str, Queue]) -> None:
    choice = broker(job(memory_mb=600), queues, {}, {})
    assert isinstance(choice, Choice)
    assert choice.queue.name == "JINR"
    assert "CNAF: 600 MB > 1 x 300 MB" in choice.reason


def test_memory_scales_with_cores(queues: dict[str, Queue]) -> None:
    choice = broker(job(memory_mb=1100, cores=4), queues, {}, {"IHEP": 5, "INFN-CLOUD": 5, "JINR": 5})
    assert isinstance(choice, Choice)
    assert choice.queue.name in {"CNAF", "IN2P3", "MSU"}  # 4 x 300 MB fits 1100 MB


def test_nothing_fits_is_permanent(queues: dict[str, Queue]) -> None:
    nofit = broker(job(memory_mb=99999), queues, {}, {})
    assert isinstance(nofit, NoFit)
    assert nofit.permanent
    assert "JINR: 99999 MB > 1 x 1600 MB" in nofit.reason
    toolong = broker(job(walltime_s=400 * 3600), queues, {}, {})
    assert isinstance(toolong, NoFit)
    assert "walltime" in toolong.reason


def test_offline_is_temporary(queues: dict[str, Queue]) -> None:
    offline = {n: Queue(**{**q.__dict__, "online": n != "JINR"}) for n, q in queues.items()}
    nofit = broker(job(memory_mb=600), offline, {}, {})
    assert isinstance(nofit, NoFit)
    assert not nofit.permanent
    assert "JINR: offline" in nofit.reason


def test_input_locality_wins_over_load(queues: dict[str, Queue]) -> None:
    locator: ReplicaLocator = MemoryLocator({"juno:a": {"IN2P3_DISK"}, "juno:b": {"IN2P3_TAPE", "CNAF_DISK"}})
    inputs = ("juno:a", "juno:b")
    choice = broker(job(inputs=inputs), queues, locator.locate(inputs), {"IN2P3": 50})
    assert isinstance(choice, Choice)
    assert choice.queue.name == "IN2P3"
    assert "2/2 inputs at the site" in choice.reason


def test_least_loaded_then_name(queues: dict[str, Queue]) -> None:
    load = {n: 3 for n in queues} | {"MSU": 1}
    choice = broker(job(), queues, {}, load)
    assert isinstance(choice, Choice)
    assert choice.queue.name == "MSU"


def test_pinned_site(queues: dict[str, Queue]) -> None:
    choice = broker(job(site="CNAF"), queues, {}, {"CNAF": 100})
    assert isinstance(choice, Choice)
    assert choice.queue.name == "CNAF"
    assert "pinned to CNAF" in choice.reason
    nofit = broker(job(site="CNAF", memory_mb=600), queues, {}, {})
    assert isinstance(nofit, NoFit)
    assert nofit.permanent


def test_an_owner_is_brokered_only_where_their_quota_lets_them_write(queues: dict[str, Queue]) -> None:
    alice = Job(1, 1, 200, 3600, (), None, owner="alice", writes=True)
    # alice's quotas (etc/topology.yaml): IHEP_DISK, CNAF_DISK, JINR_DISK; the tier-2s write to the closest
    writable = {"alice": {"IHEP_DISK", "CNAF_DISK", "JINR_DISK"}}
    choice = broker(alice, queues, {}, {"CNAF": 5, "IHEP": 5, "JINR": 5, "SYSU-CLUSTER": 5}, writable)
    assert isinstance(choice, Choice)
    assert choice.queue.rse in writable["alice"]
    assert "IN2P3: alice has no quota at IN2P3_DISK" in choice.reason  # the least loaded, but excluded
    # a job that writes nothing may run anywhere; an owner with no quota anywhere cannot be brokered, for good
    reader = Job(1, 1, 200, 3600, (), None, owner="alice", writes=False)
    anywhere = broker(reader, queues, {}, {"CNAF": 5, "IHEP": 5, "JINR": 5}, writable)
    assert isinstance(anywhere, Choice)
    assert anywhere.queue.name == "IN2P3"
    dave = Job(1, 1, 200, 3600, (), None, owner="dave", writes=True)
    refused = broker(dave, queues, {}, {}, {"dave": set()})
    assert isinstance(refused, NoFit)
    assert refused.permanent
    assert "dave has no quota" in refused.reason


def test_a_job_retried_elsewhere_avoids_the_queues_it_failed_at(queues: dict[str, Queue]) -> None:
    first = broker(job(), queues, {}, {})
    assert isinstance(first, Choice)
    again = broker(Job(1, 1, 200, 3600, (), None, avoid=frozenset({first.queue.name})), queues, {}, {})
    assert isinstance(again, Choice)
    assert again.queue.name != first.queue.name
    assert f"failed before at {first.queue.name}: avoided" in again.reason


def test_a_job_goes_back_where_it_failed_when_nothing_else_fits(queues: dict[str, Queue]) -> None:
    big = Job(1, 1, 600, 3600, (), None, avoid=frozenset({"JINR"}))  # only JINR has the memory
    choice = broker(big, queues, {}, {})
    assert isinstance(choice, Choice)
    assert choice.queue.name == "JINR"
    assert "failed before at JINR: no other queue fits" in choice.reason
    pinned = broker(Job(1, 1, 200, 3600, (), "CNAF", avoid=frozenset({"CNAF"})), queues, {}, {})
    assert isinstance(pinned, Choice)
    assert pinned.queue.name == "CNAF"


def _with_release(queues: dict[str, Queue], release: str, sites: set[str]) -> dict[str, Queue]:
    return {n: replace(q, releases=q.releases | {release} if n in sites else q.releases) for n, q in queues.items()}


def test_a_release_known_at_two_sites_only_sends_its_jobs_there(queues: dict[str, Queue]) -> None:
    two = _with_release(queues, "J99.1.0", {"CNAF", "MSU"})
    load: dict[str, int] = {}
    for i in range(6):  # the least loaded would be any other site; the release keeps them at CNAF and MSU
        choice = broker(Job(i, 1, 200, 3600, (), None, release="J99.1.0"), two, {}, load)
        assert isinstance(choice, Choice)
        assert choice.queue.name in {"CNAF", "MSU"}
        load[choice.queue.name] = load.get(choice.queue.name, 0) + 1
        assert "release J99.1.0" in choice.reason
        assert "IHEP: no release J99.1.0" in choice.reason
    assert load == {"CNAF": 3, "MSU": 3}
    anywhere = broker(Job(9, 1, 200, 3600, (), None), two, {}, {"CNAF": 9, "MSU": 9})
    assert isinstance(anywhere, Choice)
    assert anywhere.queue.name not in {"CNAF", "MSU"}  # a job without a release goes anywhere, as before


def test_a_release_no_site_has_never_fits(queues: dict[str, Queue]) -> None:
    nowhere = broker(Job(1, 1, 200, 3600, (), None, release="J01.0.0"), queues, {}, {})
    assert isinstance(nowhere, NoFit)
    assert nowhere.permanent
    assert "JINR: no release J01.0.0" in nowhere.reason
    memory = broker(Job(1, 1, 600, 3600, (), None, release="J99.1.0"),
                    _with_release(queues, "J99.1.0", {"CNAF", "MSU"}), {}, {})
    assert isinstance(memory, NoFit)  # the sites with the release lack the memory; JINR lacks the release
    assert memory.permanent


def test_the_dispatcher_refuses_a_release_no_site_has(queues: dict[str, Queue]) -> None:
    check_spec(JobSpec(key="k", transformation="detsim", release="J25.1.0"), queues)
    check_spec(JobSpec(key="k", transformation="detsim"), queues)
    with pytest.raises(Invalid) as err:
        check_spec(JobSpec(key="k7", transformation="detsim", release="J99.9.9"), queues)
    assert "job 'k7': release 'J99.9.9' is installed at no site; the releases are J20v1r0-Pre2 (CNAF, IHEP, " \
           "IN2P3, JINR), J23.1.0 (CNAF, IHEP), J24.1.0" in str(err.value)
    assert queues["IHEP"].as_json()["releases"] == ["J20v1r0-Pre2", "J23.1.0", "J24.1.0", "J25.1.0"]
