"""Put a validated topology into Rucio through the Rucio client, idempotently.

Everything is read first (one export of RSEs and distances, then accounts, scopes and limits) and only
the differences are written, so a second `up` writes nothing. Things in Rucio that the topology no
longer names are reported, never deleted: removing an RSE or an account is a data manager's decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from juno_dcs.grid.home import GridHome, GridState
from juno_dcs.topology import Topology

logger = logging.getLogger(__name__)

POSIX_IMPL = "rucio.rse.protocols.posix.Default"


@dataclass
class ApplyReport:
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def change(self, text: str) -> None:
        logger.info("topology: %s", text)
        self.changes.append(text)

    def warn(self, text: str) -> None:
        logger.warning("topology: %s", text)
        self.warnings.append(text)


def posix_protocol(home: GridHome, rse: str) -> dict[str, Any]:
    """The storage of an RSE until XRootD takes over: a directory under the grid's home."""
    rw = {"read": 1, "write": 1, "delete": 1}
    return {
        "scheme": "file",
        "hostname": "localhost",
        "port": 0,
        "prefix": f"{home.rse_dir(rse)}/",
        "impl": POSIX_IMPL,
        "domains": {"lan": dict(rw), "wan": {**rw, "third_party_copy_read": 1, "third_party_copy_write": 1}},
    }


def apply_topology(client: Any, topo: Topology, home: GridHome, state: GridState) -> ApplyReport:
    report = ApplyReport()
    exported = client.export_data(distance=True)
    rses_by_id: dict[str, dict[str, Any]] = exported["rses"]
    current = {info["rse"]: info for info in rses_by_id.values()}
    _apply_rses(client, topo, home, current, report)
    if any(name not in current for name in topo.rses):  # new RSEs: their ids are needed for distances
        exported = client.export_data(distance=True)
        rses_by_id = exported["rses"]
    _apply_distances(client, topo, rses_by_id, exported.get("distances", {}), report)
    _apply_accounts(client, topo, state, report)
    _apply_scopes(client, topo, report)
    _apply_quotas(client, topo, report)
    return report


def _apply_rses(
    client: Any, topo: Topology, home: GridHome, current: dict[str, dict[str, Any]], report: ApplyReport
) -> None:
    for name in sorted(set(current) - set(topo.rses)):
        report.warn(f"RSE {name} is in Rucio but not in the topology: left as it is")
    for name, rse in topo.rses.items():
        rse_type = topo.rse_type(name)
        info = current.get(name)
        if info is None:
            client.add_rse(name, rse_type=rse_type, deterministic=True, volatile=rse.volatile)
            report.change(f"added RSE {name} ({rse_type})")
            attrs: dict[str, Any] = {}
            protocols: list[dict[str, Any]] = []
        else:
            if str(info.get("rse_type")).upper().removeprefix("RSETYPE.") != rse_type:
                client.update_rse(name, {"rse_type": rse_type})
                report.change(f"RSE {name}: rse_type set to {rse_type}")
            attrs = info.get("attributes") or {}
            protocols = info.get("protocols") or []
        for key, value in topo.rse_attributes(name).items():
            if key not in attrs or str(attrs[key]) != str(value):
                client.add_rse_attribute(name, key, value)
                report.change(f"RSE {name}: attribute {key}={value}")
        home.rse_dir(name).mkdir(parents=True, exist_ok=True)
        _apply_protocol(client, name, posix_protocol(home, name), protocols, report)


def _apply_protocol(
    client: Any, rse: str, wanted: dict[str, Any], protocols: list[dict[str, Any]], report: ApplyReport
) -> None:
    same_scheme = [p for p in protocols if p.get("scheme") == wanted["scheme"]]
    if not same_scheme:
        client.add_protocol(rse, wanted)
        report.change(f"RSE {rse}: protocol {wanted['scheme']} at {wanted['prefix']}")
        return
    have = same_scheme[0]
    keys = ("hostname", "port", "prefix", "impl")
    if any(have.get(k) != wanted[k] for k in keys) or have.get("domains") != wanted["domains"]:
        client.delete_protocols(rse, wanted["scheme"])
        client.add_protocol(rse, wanted)
        report.change(f"RSE {rse}: protocol {wanted['scheme']} updated")


def _apply_distances(
    client: Any,
    topo: Topology,
    rses_by_id: dict[str, dict[str, Any]],
    distances: dict[str, dict[str, Any]],
    report: ApplyReport,
) -> None:
    names = {rse_id: info["rse"] for rse_id, info in rses_by_id.items()}
    have: dict[tuple[str, str], int] = {}
    for src_id, row in distances.items():
        for dst_id, value in row.items():
            if src_id in names and dst_id in names:
                have[(names[src_id], names[dst_id])] = int(value["distance"])
    for src in topo.rses:
        for dst in topo.rses:
            if src == dst:
                continue
            want = topo.distance(src, dst)
            if (src, dst) not in have:
                client.add_distance(src, dst, {"distance": want})
            elif have[(src, dst)] != want:
                client.update_distance(src, dst, {"distance": want})
            else:
                continue
            report.change(f"distance {src} -> {dst} = {want}")


def _apply_accounts(client: Any, topo: Topology, state: GridState, report: ApplyReport) -> None:
    existing = {a["account"] for a in client.list_accounts()}
    for name in sorted(existing - set(topo.accounts)):
        report.warn(f"account {name} is in Rucio but not in the topology: left as it is")
    for name, account in topo.accounts.items():
        if name not in existing:
            client.add_account(name, account.type, account.email)
            report.change(f"added account {name} ({account.type})")
            identities: list[dict[str, Any]] = []
        else:
            identities = list(client.list_identities(name))
        if not any(i.get("type") == "USERPASS" and i.get("identity") == name for i in identities):
            client.add_identity(
                name, identity=name, authtype="USERPASS", email=account.email, default=True,
                password=state.password(name),
            )
            report.change(f"account {name}: userpass identity {name}")


def _apply_scopes(client: Any, topo: Topology, report: ApplyReport) -> None:
    owners = {row["scope"]: row["account"] for row in client.list_scope_owners()}
    for scope, owner in sorted(topo.all_scopes().items()):
        if scope not in owners:
            client.add_scope(owner, scope)
            report.change(f"added scope {scope} owned by {owner}")
        elif owners[scope] != owner:
            report.warn(f"scope {scope} is owned by {owners[scope]} in Rucio, {owner} in the topology: left as it is")


def _apply_quotas(client: Any, topo: Topology, report: ApplyReport) -> None:
    for account, limits in topo.resolved_quotas().items():
        have = client.get_local_account_limits(account)
        for rse, nbytes in sorted(limits.items()):
            if have.get(rse) is None or int(have[rse]) != nbytes:
                client.set_local_account_limit(account, rse, nbytes)
                report.change(f"quota {account} at {rse} = {nbytes} bytes")
