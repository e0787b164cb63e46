"""`juno-dcs raw status`: every daily block with its files and bytes, and per site the replicas and the rules,
with the reason of any rule that is not progressing. Read through the Rucio client only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from juno_dcs.placement.rse_expr import evaluate
from juno_dcs.topology import Topology

Client = Any


class RuleView(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    rse_expression: str
    state: str
    locks_ok: int
    locks_replicating: int
    locks_stuck: int
    reason: str | None = None


class SiteView(BaseModel):
    replicas: int = Field(description="Available file replicas at the site's RSEs (disk and tape together).")
    rses: dict[str, int] = Field(default_factory=dict, description="Available files per RSE.")
    rules: list[str] = Field(default_factory=list, description="The states of the rules placing data here.")
    rule_details: list[RuleView] = Field(default_factory=list)


class BlockView(BaseModel):
    name: str
    state: str = Field(description="open (files still arrive) or closed")
    files: int
    bytes: int
    run_first: int | None = None
    run_last: int | None = None
    sites: dict[str, SiteView]

    @property
    def complete(self) -> bool:
        return all(s == "OK" for site in self.sites.values() for s in site.rules)


@dataclass(frozen=True)
class StatusRow:
    """A block as `raw status` shows it: its view, and when it was checked (None: asked of Rucio now)."""

    view: BlockView
    checked_at: datetime | None


def rule_reason(rule: dict[str, Any]) -> str | None:
    """Why a rule is not OK, in words, from what Rucio recorded on it."""
    state = str(rule.get("state"))
    error = rule.get("error")
    if state == "OK":
        return None
    if state == "STUCK":
        return f"stuck: {error}" if error else "stuck: Rucio recorded no reason (see the rule's locks)"
    if state == "SUSPENDED":
        return f"suspended: {error or 'by an operator'}"
    if state == "WAITING_APPROVAL":
        return "waiting for approval"
    if state == "INJECT":
        return "not yet evaluated by the judge"
    stuck = int(rule.get("locks_stuck_cnt") or 0)
    if stuck:
        return f"{stuck} file(s) stuck" + (f": {error}" if error else "")
    return f"{int(rule.get('locks_replicating_cnt') or 0)} file(s) being copied"


def block_view(client: Client, scope: str, name: str, topology: Topology, meta: dict[str, Any] | None = None,
               rules: list[dict[str, Any]] | None = None) -> BlockView:
    """One block; `meta` (all its metadata, plugin ALL) and `rules`, when the caller fetched them in bulk."""
    if meta is not None and not meta.get("is_open") and meta.get("length") is not None:
        did = {"length": meta["length"], "bytes": meta.get("bytes"), "open": False}  # closed: Rucio's own count
    else:
        did = client.get_did(scope, name, dynamic_depth="FILE")  # an open dataset has no length of its own yet
    if meta is None:
        meta = client.get_metadata(scope, name, plugin="JSON")
    site_of = {rse: topology.rses[rse].site for rse in topology.rses}
    sites: dict[str, SiteView] = {}
    for replica in client.list_dataset_replicas(scope, name, deep=True):
        rse = str(replica["rse"])
        site = sites.setdefault(site_of.get(rse, rse), SiteView(replicas=0))
        count = int(replica.get("available_length") or 0)
        site.rses[rse] = count
        site.replicas += count
    for rule in client.list_did_rules(scope, name) if rules is None else rules:
        view = RuleView(id=str(rule["id"]), rse_expression=str(rule["rse_expression"]), state=str(rule["state"]),
                        locks_ok=int(rule.get("locks_ok_cnt") or 0),
                        locks_replicating=int(rule.get("locks_replicating_cnt") or 0),
                        locks_stuck=int(rule.get("locks_stuck_cnt") or 0), reason=rule_reason(rule))
        try:
            rses = evaluate(view.rse_expression, topology)
        except ValueError:
            rses = []
        for site_name in sorted({site_of.get(r, r) for r in rses}) or ["(unknown)"]:
            site = sites.setdefault(site_name, SiteView(replicas=0))
            site.rules.append(view.state)
            site.rule_details.append(view)
    files = int(did.get("length") or 0)
    for site in sites.values():
        site.rule_details = [_short_of_files(view, files) for view in site.rule_details]
    return BlockView(name=name, state="open" if did.get("open") else "closed", files=files,
                     bytes=int(did.get("bytes") or 0), run_first=meta.get("run_first"), run_last=meta.get("run_last"),
                     sites=dict(sorted(sites.items())))


def _short_of_files(view: RuleView, files: int) -> RuleView:
    """An OK rule whose locks do not cover every file of the block: Rucio has not yet evaluated the latest
    attachments (its judge pauses a dataset for 1 to 10 minutes when its locks are contended). Rucio calls it
    OK; say what is missing."""
    locks = view.locks_ok + view.locks_replicating + view.locks_stuck
    if view.state != "OK" or locks >= files:
        return view
    return view.model_copy(update={"reason": f"OK for {locks} of {files} files: Rucio's judge has not evaluated "
                                             f"the {files - locks} later attachment(s) yet"})


BULK_FROM = 8  # blocks: from this many on, their metadata and rules come in one call each, not one per block


def raw_status(client: Client, topology: Topology, scope: str = "raw", stream: str | None = None,
               day: str | None = None) -> list[BlockView]:
    """Every block (or those of one stream / one day YYYYMMDD), sorted by name. For many blocks, the metadata
    (file count, bytes, open, runs) of all in one call and every rule of the scope in one call: the replicas per
    RSE stay one call per block (Rucio has no bulk call that counts a dataset's file replicas)."""
    pattern = f"block.{day or '*'}.{stream or '*'}"
    names = sorted(str(n) for n in client.list_dids(scope, {"name": pattern}, did_type="dataset"))
    if len(names) < BULK_FROM:
        return [block_view(client, scope, name, topology) for name in names]
    return views_of(client, topology, scope, names, rules_by_block(client, scope, set(names)))


def rules_by_block(client: Client, scope: str, names: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The rules of the blocks `names`, from every rule of the scope in one call."""
    rules: dict[str, list[dict[str, Any]]] = {}
    for rule in client.list_replication_rules({"scope": scope}):
        if rule["name"] in names:
            rules.setdefault(str(rule["name"]), []).append(rule)
    return rules


def views_of(client: Client, topology: Topology, scope: str, names: list[str],
             rules: dict[str, list[dict[str, Any]]]) -> list[BlockView]:
    """Views of `names` with the metadata of all of them in one call and their `rules` given."""
    if not names:
        return []
    metas = {str(m["name"]): m for m in client.get_metadata_bulk([{"scope": scope, "name": n} for n in names],
                                                                 plugin="ALL")}
    return [block_view(client, scope, n, topology, metas.get(n), rules.get(n, [])) for n in names]


def summary(blocks: list[BlockView]) -> dict[str, dict[str, int]]:
    """Per site: blocks with a rule there, blocks whose rules are all OK, and file replicas."""
    sites: dict[str, dict[str, int]] = {}
    for block in blocks:
        for name, site in block.sites.items():
            row = sites.setdefault(name, {"blocks": 0, "blocks_ok": 0, "replicas": 0})
            row["replicas"] += site.replicas
            if site.rules:
                row["blocks"] += 1
                row["blocks_ok"] += all(s == "OK" for s in site.rules)
    return dict(sorted(sites.items()))
