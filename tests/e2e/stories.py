"""The three stories the e2e tests tell, each started the way its user starts it and then waited for: a
data-taking day (SPADE), a Monte Carlo production (the production manager) and a user's jsub task (alice).
Each is started once per session (tests/e2e/conftest.py), so the three run side by side."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.shell import Shell, all_ok, rules, wait_for

# The share of raw data (etc/placement/raw.yaml) as the paper tells it: IHEP disk and tape, CNAF and JINR a full
# copy each on disk then tape, IN2P3 the days D with D.toordinal() % 3 == 0.
EVERY_DAY = ("IHEP_DISK", "IHEP_TAPE", "CNAF_DISK", "CNAF_TAPE", "JINR_DISK", "JINR_TAPE")
IN2P3_DAY = (*EVERY_DAY, "IN2P3_DISK", "IN2P3_TAPE")


def _uid() -> str:
    return uuid.uuid4().hex[:8]


# --- a data-taking day


def kafka_bootstrap(shell: Shell) -> str:
    # the services' addresses, healthy or not (`status` exits 1 while a program is still coming back)
    services = json.loads(shell.run("juno-dcs", "status", "--json", check=False).stdout)["services"]
    return str(services["kafka"]).removeprefix("kafka://")


def _consumer(bootstrap: str) -> tuple[Any, Any]:
    """A plain Kafka consumer of the grid's broker (Kafka 0.9) in no consumer group, and kafka's TopicPartition."""
    with warnings.catch_warnings():  # kafka-python 3.0 loads its protocol files with importlib's legacy API
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer, TopicPartition

        return KafkaConsumer(bootstrap_servers=[bootstrap], api_version=(0, 9), group_id=None,
                             enable_auto_commit=False), TopicPartition


def topic_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """The topic's end offset per partition (where the next message of each will be)."""
    consumer, TopicPartition = _consumer(bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: int(offset) for tp, offset in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, since: dict[int, int], keep: Any, count: int,
               timeout: float = 120) -> list[dict[str, Any]]:
    """The JSON messages published on `topic` after the offsets `since` for which `keep(message)` holds, once
    `count` of them were read: what anyone subscribed to the topic sees."""
    consumer, TopicPartition = _consumer(bootstrap)
    found: list[dict[str, Any]] = []
    try:
        parts = [TopicPartition(topic, p) for p in since]
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, since[tp.partition])
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                found += [m for m in (json.loads(r.value) for r in records) if keep(m)]
    finally:
        consumer.close()
    return found


def in2p3_day(rng: random.Random) -> dt.date:
    """A day of a past year that is one of IN2P3's (a block of its own, closed at once: the day is long over)."""
    day = dt.date(2001, 1, 1) + dt.timedelta(days=rng.randrange(365 * 20))
    while day.toordinal() % 3:
        day += dt.timedelta(days=1)
    return day


@dataclass
class DataTakingDay:
    """SPADE delivers `files` raw files of ~100 kB over two days, the first one of IN2P3's days and the second
    not, in a stream of its own; what it announced on Kafka is read back from the topic."""

    spade: Shell
    files: int = 20
    stream: str = field(default_factory=lambda: "e2e" + _uid())
    first: dt.date = field(default_factory=lambda: in2p3_day(random.Random()))  # noqa: S311
    started_at: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)
    announced: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: list[dict[str, Any]] = field(default_factory=list)

    @property
    def days(self) -> list[dt.date]:
        return [self.first, self.first + dt.timedelta(days=1)]

    @property
    def blocks(self) -> dict[str, tuple[str, ...]]:
        """Each day's block and the RSEs the share places it on."""
        return {f"block.{d:%Y%m%d}.{self.stream}": IN2P3_DAY if d.toordinal() % 3 == 0 else EVERY_DAY
                for d in self.days}

    def start(self) -> None:
        bootstrap = kafka_bootstrap(self.spade)
        since = topic_ends(bootstrap, "spade.files")
        self.started_at = time.time()
        seed = random.randrange(1 << 30)  # noqa: S311 - new contents each run, not secrets
        self.report = self.spade.json(
            "juno-dcs", "spade-sim", "--files", str(self.files), "--days", "2", "--start-date",
            self.first.isoformat(), "--size", "100kB", "--stream", self.stream, "--seed", str(seed),
            "--json", "--no-progress")
        messages = read_topic(bootstrap, "spade.files", since, lambda m: m.get("stream") == self.stream, self.files)
        self.announced = {m["name"]: m for m in messages}

    def raw_status(self) -> list[dict[str, Any]]:
        return list(self.spade.json("juno-dcs", "raw", "status", "--stream", self.stream, "--json"))

    def complete(self, blocks: list[dict[str, Any]]) -> bool:
        """Both blocks closed, every rule of the share there and OK with a lock OK for each of the block's files."""
        if sorted(b["name"] for b in blocks) != sorted(self.blocks):
            return False
        for block in blocks:
            details = [d for site in block["sites"].values() for d in site["rule_details"]]
            if block["state"] != "closed" or sorted(d["rse_expression"] for d in details) != sorted(
                    self.blocks[block["name"]]):
                return False
            if any(d["state"] != "OK" or d["locks_ok"] < block["files"] for d in details):
                return False
        return True

    def wait(self, timeout: float = 900) -> list[dict[str, Any]]:
        """Until the day is at every site of the share, disks and tapes (`juno-dcs raw status`)."""
        if not self.status:
            self.status = wait_for(f"the blocks of stream {self.stream} complete at every site of the share",
                                   self.raw_status, self.complete, timeout)
        return self.status


# --- a production


@dataclass
class MonteCarloProduction:
    """A production manager's small production from a steering file like etc/productions/*.yaml: 3 jobs of
    electrons through detsim -> elecsim -> cal -> rec, with its own locked conditions tag."""

    manager: Shell
    jobs: int = 3
    name: str = field(default_factory=lambda: "e-_e2e_" + _uid())
    campaign: str = "E2E"
    tag: str = field(default_factory=lambda: "GT-E2E-" + _uid())
    destinations: tuple[str, ...] = ("IHEP_DISK", "tier=1&type=DISK&site=CNAF")
    started_at: float = 0.0
    submitted: str = ""
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def container(self) -> str:
        return f"mc.{self.campaign}.{self.name}"

    @property
    def final(self) -> str:
        return f"mc:{self.container}.rec"

    def start(self) -> None:
        made = self.manager.json("juno-payload", "make-conditions", "--tag", self.tag, "--runs", "1-999999")
        assert made["state"] == "locked", made
        steering = self.manager.cwd / f"{self.name}.yaml"
        steering.write_text(yaml.safe_dump({
            "name": self.name, "campaign": self.campaign, "software": "J25.1.0",
            "args": {"detsim": "gun --particles e- --momentums 1.0"}, "events_per_job": 10,
            "jobs": self.jobs, "workflow": ["detsim", "elecsim", "cal", "rec"], "conditions_tag": self.tag,
            "run": 1234, "output_storage": "site-local", "destinations": list(self.destinations),
            "lifetime": "2 days", "resources": {"detsim": {"memory_mb": 200}, "rec": {"memory_mb": 150}},
        }, sort_keys=False))
        self.started_at = time.time()
        self.submitted = self.manager.out("juno-prod", "submit", str(steering))

    def status(self) -> dict[str, Any]:
        return dict(self.manager.json("juno-prod", "status", self.name, "--json"))

    def wait(self, timeout: float = 900) -> dict[str, Any]:
        """Until the production is done and its final dataset's rules are OK for every file."""
        if not self.report:
            self.report = wait_for(f"production {self.name} done", self.status,
                                   lambda s: s["state"] in ("done", "killed"), timeout)
            wait_for(f"the rules of {self.final} OK for its {self.jobs} files", lambda: rules(self.manager, self.final),
                     lambda found: len(found) == len(self.destinations) and all_ok(found, self.jobs), timeout)
        return self.report


# --- a user task


@dataclass
class UserTask:
    """alice's jsub task, written as JUNO's JSUB examples are: two jobvar groups crossed (2 particles, each zipped
    with a nuclide, x 2 momenta = 4 sub-jobs), each a detsim gun step (the gun as the step's keys), a detsim
    gendecay step (`additionalArgs: 'gendecay --nuclear $(nuclear) ...'`) and a shell step that writes a summary,
    all uploaded to her scope."""

    user: Shell
    name: str = field(default_factory=lambda: "e2escan" + _uid())
    task_id: int = 0
    uid: str = ""
    dataset: str = ""
    subjobs: int = 0
    created: str = ""
    started_at: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)

    def task_file(self) -> Path:
        path = self.user.cwd / f"{self.name}.yaml"
        path.write_text(yaml.safe_dump({
            "taskName": self.name, "experiment": "juno", "softVersion": "J25.1.0",
            "backend": {"type": "dirac", "outputSubDir": "e2e", "memoryMB": 300, "walltime": 1800},
            "splitter": {"mode": "splitByJobvars", "evtMaxPerJob": 5, "jobvarLists": {
                "particle": {"type": "enumerate", "list": ["e-", "gamma"], "group": "particle"},
                "nuclear": {"type": "enumerate", "list": ["K-40", "Co-60"], "group": "particle"},
                "energy": {"type": "enumerate", "list": [1, 3], "group": "energy"},
                "label": {"type": "composite_string", "value": "$(particle)_$(energy)MeV"}}},
            "workflow": {
                "steps": ["detsim", "decay", "summary"],
                "detsim": {"particles": "$(particle)", "momentums": "$(energy)", "output": "$(label).detsim.root"},
                "decay": {"type": "payload", "payload": "detsim", "output": "$(label).decay.root",
                          "additionalArgs": "gendecay --nuclear $(nuclear) --volume pTarget --material LS"},
                "summary": {"type": "cmd",
                            "cmd": "echo particle=$(particle) energy=$(energy) events=$(evtmax) seed=$(seed) "
                                   "bytes=$$(stat -c %s $(label).detsim.root) > $(label).txt",
                            "outputUpload": ["$(label).txt"]}},
        }, sort_keys=False))
        return path

    def start(self) -> None:
        self.started_at = time.time()
        self.created = self.user.out("jsub", "create", str(self.task_file()), "--submit")
        found = re.search(r"task (\d+) created: (\S+), (\d+) sub-job\(s\), backend dispatcher, outputs "
                          r"user\.(\w+):(\S+)", self.created)
        assert found, self.created
        self.task_id, self.uid, self.subjobs = int(found[1]), found[2], int(found[3])
        self.dataset = f"user.{found[4]}:{found[5]}"

    def status(self) -> dict[str, Any]:
        return dict(self.user.json("jsub", "status", str(self.task_id), "--jobs", "--json"))

    def wait(self, timeout: float = 600) -> dict[str, Any]:
        """Until every sub-job is final at the dispatcher."""
        if not self.state:
            self.state = wait_for(f"jsub task {self.task_id} ({self.uid}) over", self.status,
                                  lambda s: set(s["by_state"]) <= {"finished", "failed", "cancelled"}, timeout)
        return self.state
