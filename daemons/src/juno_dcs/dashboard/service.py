"""What the routes work with, made once from the configuration: topology, policy, sources, a small TTL cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from juno_dcs.dashboard.collector import Collector
from juno_dcs.dashboard.config import DashboardConfig
from juno_dcs.dashboard.sources import DispatcherApi, RucioSource, bearer_auth
from juno_dcs.placement.loader import Policies, load_policies
from juno_dcs.topology import Topology, load_topology

T = TypeVar("T")


class TtlCache:
    """Values computed at most once per `ttl_s` (per key); computing one key at a time."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._values: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], T]) -> T:
        with self._lock:
            hit = self._values.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
                return hit[1]  # type: ignore[no-any-return]
            value = compute()
            self._values[key] = (time.monotonic(), value)
            return value


@dataclass
class Context:
    config: DashboardConfig
    topology: Topology
    policies: Policies
    rucio: RucioSource
    dispatcher: DispatcherApi
    cache: TtlCache = field(default_factory=lambda: TtlCache(10.0))
    collector: Collector | None = None  # the one running in this process, if any
    db_slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(3))


def context(config: DashboardConfig) -> Context:
    """Reads the topology and the policy: a bad file fails here, with its reason."""
    topology = load_topology(config.topology)
    policies = load_policies(config.policies_dir)
    return Context(config=config, topology=topology, policies=policies,
                   db_slots=threading.BoundedSemaphore(config.db_connections),
                   rucio=RucioSource(config, topology, policies),
                   dispatcher=DispatcherApi(config.dispatcher_url, config.http_timeout_s,
                                            bearer_auth(config, config.dispatcher_audience)),
                   cache=TtlCache(config.cache_s))
