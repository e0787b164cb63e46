"""The pilot factory (like Harvester): keeps each queue's running pilots in line with its jobs.

Every cycle it reads `GET /v1/queues` and, per queue it serves, starts

    new = max(0, min(cap - running, activated - idle))
    cap = min(max_pilots, queue cores // pilot cores)          (0 when the queue is offline or disabled)
    idle = max(0, running - leased)                             pilots up but without a job yet

where `running` is what the backend says runs for the queue and `leased` the queue's jobs in sent, starting,
running or holding. Pilots end themselves when getJob answers no work or their lifetime is over, so the factory
never has to kill a surplus.

Two factories at once: the decision for a queue (count, then submit) is made under an exclusive lock file per
queue, `<work_root>/factory/<queue>.lock` (fcntl.flock, non-blocking: a factory that finds it held leaves that
queue to the other one this cycle), and `running` is counted from the pilot records on disk that every factory
shares, so neither starts pilots the other already started. The kernel drops the lock of a factory that dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from juno_dcs.errors import ServiceError
from juno_dcs.pilot.config import FactoryConfig
from juno_dcs.wms.client import WmsClient
from juno_dcs.wms.models import ACTIVATED, LEASED_STATES

logger = logging.getLogger(__name__)


class QueueState(BaseModel):
    """One row of GET /v1/queues, as the factory needs it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    queue: str
    site: str
    online: bool
    cores: int
    memory_mb_per_core: float
    walltime_s: int
    rse: str | None = None
    jobs: dict[str, int] = {}
    pilots: int = 0

    @property
    def activated(self) -> int:
        return self.jobs.get(ACTIVATED, 0)

    @property
    def leased(self) -> int:
        return sum(self.jobs.get(state, 0) for state in LEASED_STATES)


@dataclass(frozen=True)
class PilotSlot:
    """What one pilot of a queue offers: the arguments of its `juno-pilot run`."""

    queue: str
    site: str
    cores: int
    memory_mb: int
    walltime_s: int
    lifetime_s: int


class Backend(Protocol):
    """Where pilots run: local processes here; a batch system (HTCondor, Slurm) would implement the same."""

    def submit(self, slot: PilotSlot, n: int) -> list[str]:
        """Start `n` pilots for the slot's queue; their pilot ids."""
        ...

    def running(self, queue: str) -> int:
        """Pilots of `queue` that are alive (started by any factory sharing this backend)."""
        ...

    def kill(self, queue: str, pilot_ids: Sequence[str] | None = None) -> int:
        """Stop these pilots of `queue` (all when None): SIGTERM first, so each ends its job cleanly."""
        ...


def pilot_cap(queue: QueueState, max_pilots: int, pilot_cores: int) -> int:
    if not queue.online:
        return 0
    return max(0, min(max_pilots, queue.cores // pilot_cores))


def pilots_to_start(queue: QueueState, running: int, max_pilots: int, pilot_cores: int) -> int:
    """How many new pilots the queue needs now (module docstring)."""
    cap = pilot_cap(queue, max_pilots, pilot_cores)
    idle = max(0, running - queue.leased)
    return max(0, min(cap - running, queue.activated - idle))


def slot_for(queue: QueueState, config: FactoryConfig) -> PilotSlot:
    cores = config.queue(queue.queue).pilot_cores
    return PilotSlot(queue=queue.queue, site=queue.site, cores=cores,
                     memory_mb=max(1, int(queue.memory_mb_per_core * cores * config.memory_scale)),
                     walltime_s=queue.walltime_s, lifetime_s=config.pilot_lifetime_s)


def parse_queues(rows: object) -> list[QueueState]:
    if not isinstance(rows, list):
        raise ServiceError(f"GET /v1/queues answered {type(rows).__name__}, not a list")
    try:
        return [QueueState.model_validate(row) for row in rows]
    except ValidationError as exc:
        raise ServiceError(f"GET /v1/queues: unexpected row: {exc}") from exc


class QueueLocks:
    """One exclusive lock file per queue under `directory` (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def hold(self, queue: str) -> Iterator[bool]:
        """True while this process holds the queue's lock; False (at once) when another one does."""
        with (self.directory / f"{queue}.lock").open("a+") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class SiteFilter:
    """The sites whose queues a factory serves: only `only` when given, and never those in `skip` (a grid spread
    over several nodes runs one factory per node, each for the sites of its node: docs/deploy.md)."""

    only: frozenset[str] | None = None
    skip: frozenset[str] = frozenset()

    def serves(self, site: str) -> bool:
        return (self.only is None or site in self.only) and site not in self.skip


class Factory:
    def __init__(self, config: FactoryConfig, client: WmsClient, backend: Backend, locks: QueueLocks,
                 sites: SiteFilter | None = None) -> None:
        self.config = config
        self.client = client
        self.backend = backend
        self.locks = locks
        self.sites = sites or SiteFilter()

    def run_once(self) -> dict[str, int]:
        """One cycle: the pilots started per queue (queues another factory held are left out)."""
        queues = parse_queues(self.client.queues())
        started: dict[str, int] = {}
        for queue in queues:
            if not self.config.serves(queue.queue) or not self.sites.serves(queue.site):
                continue
            with self.locks.hold(queue.queue) as mine:
                if not mine:
                    logger.info("queue %s: another factory holds its lock this cycle", queue.queue)
                    continue
                started[queue.queue] = self._queue_cycle(queue)
        return started

    def _queue_cycle(self, queue: QueueState) -> int:
        qc = self.config.queue(queue.queue)
        running = self.backend.running(queue.queue)
        n = pilots_to_start(queue, running, self.config.max_pilots(queue.queue), qc.pilot_cores)
        if n or queue.activated:
            logger.info("queue %s (%s): %d activated, %d leased, %d pilots running, cap %d: starting %d",
                        queue.queue, "online" if queue.online else "offline", queue.activated, queue.leased,
                        running, pilot_cap(queue, self.config.max_pilots(queue.queue), qc.pilot_cores), n)
        if n:
            self.backend.submit(slot_for(queue, self.config), n)
        return n

    def run(self, stop: threading.Event) -> None:
        """Cycles every sleep_s until `stop`; a failing cycle (dispatcher down) is logged and tried again."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the dispatcher or a backend failing must not end the factory
                logger.warning("factory cycle failed: %s", exc)
            stop.wait(self.config.sleep_s)
        logger.info("factory stopping; its pilots go on until their work or lifetime ends")
