"""The production manager's view of Rucio: its container and datasets, their files, closing, final rules.

`RucioCatalog` wraps a rucio Client of the production account; every write is safe to replay (a DID or an
attachment that exists already counts as done, closing a closed dataset does nothing, the policy applier
creates only missing rules).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

from juno_dcs.placement.applier import ApplyReport, Notify, apply
from juno_dcs.placement.loader import Policies
from juno_dcs.topology import Topology

SCOPE = "mc"


@dataclass(frozen=True)
class CatalogFile:
    name: str
    bytes: int


class Catalog(Protocol):
    def ensure_collections(self, container: str, datasets: list[str], attach: list[str]) -> None: ...
    def files(self, dataset: str) -> list[CatalogFile]: ...
    def close(self, dataset: str) -> bool: ...
    def apply_rules(self, dataset: str, destinations: list[str] | None, lifetime: int | None,
                    notify: Notify = "N") -> ApplyReport: ...


class RucioCatalog:
    """`Catalog` on a rucio Client (untyped, hence Any)."""

    def __init__(self, client: Any, policies: Policies, topology: Topology) -> None:
        self.client = client
        self.policies = policies
        self.topology = topology

    def ensure_collections(self, container: str, datasets: list[str], attach: list[str]) -> None:
        """The container, the datasets, and `attach` (some of the datasets) in the container."""
        from rucio.common.exception import DataIdentifierAlreadyExists, DuplicateContent

        with contextlib.suppress(DataIdentifierAlreadyExists):
            self.client.add_container(SCOPE, container)
        for name in datasets:
            with contextlib.suppress(DataIdentifierAlreadyExists):
                self.client.add_dataset(SCOPE, name)
        present = {c["name"] for c in self.client.list_content(SCOPE, container)}
        missing = [{"scope": SCOPE, "name": n} for n in attach if n not in present]
        if missing:
            with contextlib.suppress(DuplicateContent):  # another instance attached them meanwhile
                self.client.attach_dids(SCOPE, container, missing)

    def files(self, dataset: str) -> list[CatalogFile]:
        return [CatalogFile(name=str(f["name"]), bytes=int(f.get("bytes") or 0))
                for f in self.client.list_files(SCOPE, dataset)]

    def close(self, dataset: str) -> bool:
        """Close the dataset; whether this call closed it (False: it was closed already)."""
        if not self.client.get_did(SCOPE, dataset).get("open", False):
            return False
        self.client.close(SCOPE, dataset)
        return True

    def apply_rules(self, dataset: str, destinations: list[str] | None, lifetime: int | None,
                    notify: Notify = "N") -> ApplyReport:
        """The policy's rules of the dataset that are missing; `destinations` and `lifetime` replace the policy's
        (None: the policy's, production.yaml); `notify`: Rucio's notification of the rules made."""
        return apply(self.client, f"{SCOPE}:{dataset}", self.policies, self.topology, destinations=destinations,
                     lifetime=lifetime, notify=notify)
