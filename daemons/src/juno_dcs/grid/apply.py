"""Put a validated topology into Rucio through the Rucio client, idempotently.

Everything is read first (one export of RSEs and distances, then accounts, scopes and limits) and only
the differences are written, so a second `up` writes nothing. Things in Rucio that the topology no
longer names are reported, never deleted: removing an RSE or an account is a data manager's decision.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from juno_dcs.topology import Topology

logger = logging.getLogger(__name__)

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


def apply_topology(
    client: Any,
    topo: Topology,
    protocols: Mapping[str, list[dict[str, Any]]],
    passwords: Mapping[str, str],
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
    quotas: Mapping[str, Mapping[str, int]] | None = None,
    token_issuer: str | None = None,
) -> ApplyReport:
    """Make Rucio hold `topo`, with `protocols` (by RSE) as the RSEs' protocols, `passwords` (by account)
    for new userpass identities, `attributes` (by RSE; default: the topology's) as RSE attributes,
    `quotas` (account -> RSE -> bytes; default: the topology's) as local account limits and, with
    `token_issuer`, an OIDC identity `SUB=<account>, ISS=<issuer>` per account: Rucio's REST API then takes that
    issuer's tokens (whose `sub` is the account) in X-Rucio-Auth-Token."""
    report = ApplyReport()
    exported = client.export_data(distance=True)
    rses_by_id: dict[str, dict[str, Any]] = exported["rses"]
    current = {info["rse"]: info for info in rses_by_id.values()}
    wanted_attrs = attributes or {name: topo.rse_attributes(name) for name in topo.rses}
    _apply_rses(client, topo, protocols, wanted_attrs, current, report)
    if any(name not in current for name in topo.rses):  # new RSEs: their ids are needed for distances
        exported = client.export_data(distance=True)
        rses_by_id = exported["rses"]
    _apply_distances(client, topo, rses_by_id, exported.get("distances", {}), report)
    _apply_accounts(client, topo, passwords, report, token_issuer)
    _apply_scopes(client, topo, report)
    _apply_quotas(client, quotas if quotas is not None else topo.resolved_quotas(), report)
    return report


def _apply_rses(
    client: Any,
    topo: Topology,
    protocols: Mapping[str, list[dict[str, Any]]],
    wanted_attrs: Mapping[str, Mapping[str, Any]],
    current: dict[str, dict[str, Any]],
    report: ApplyReport,
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
            have: list[dict[str, Any]] = []
        else:
            if str(info.get("rse_type")).upper().removeprefix("RSETYPE.") != rse_type:
                client.update_rse(name, {"rse_type": rse_type})
                report.change(f"RSE {name}: rse_type set to {rse_type}")
            attrs = info.get("attributes") or {}
            have = info.get("protocols") or []
        for key, value in wanted_attrs[name].items():
            if key not in attrs or str(attrs[key]) != str(value):
                client.add_rse_attribute(name, key, value)
                report.change(f"RSE {name}: attribute {key}={value}")
        _apply_protocols(client, name, protocols[name], have, report)


def _same_protocol(have: dict[str, Any], wanted: dict[str, Any]) -> bool:
    keys = ("hostname", "port", "prefix", "impl")
    return all(have.get(k) == wanted[k] for k in keys) and have.get("domains") == wanted["domains"]


def _apply_protocols(
    client: Any, rse: str, wanted: list[dict[str, Any]], have: list[dict[str, Any]], report: ApplyReport
) -> None:
    """Add, replace or remove protocols so that the RSE has exactly `wanted` (matched by scheme)."""
    by_scheme = {p.get("scheme"): p for p in have}
    wanted_schemes = {p["scheme"] for p in wanted}
    for scheme in sorted(set(by_scheme) - wanted_schemes, key=str):
        client.delete_protocols(rse, scheme)
        report.change(f"RSE {rse}: protocol {scheme} removed")
    for protocol in wanted:
        current = by_scheme.get(protocol["scheme"])
        if current is not None and _same_protocol(current, protocol):
            continue
        if current is not None:
            client.delete_protocols(rse, protocol["scheme"])
        client.add_protocol(rse, protocol)
        where = f"{protocol['hostname']}:{protocol['port']}" if protocol["port"] else protocol["prefix"]
        report.change(f"RSE {rse}: protocol {protocol['scheme']} at {where}")


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


def oidc_identity(account: str, issuer: str) -> str:
    """Rucio's name of the identity of `issuer`'s tokens whose `sub` is `account` (rucio.core.oidc)."""
    return f"SUB={account}, ISS={issuer}"


def _apply_accounts(client: Any, topo: Topology, passwords: Mapping[str, str], report: ApplyReport,
                    token_issuer: str | None) -> None:
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
                password=passwords[name],
            )
            report.change(f"account {name}: userpass identity {name}")
        if token_issuer and not any(i.get("type") == "OIDC" and i.get("identity") == oidc_identity(name, token_issuer)
                                    for i in identities):
            client.add_identity(name, identity=oidc_identity(name, token_issuer), authtype="OIDC",
                                email=account.email, default=True)
            report.change(f"account {name}: token identity {oidc_identity(name, token_issuer)}")


def _apply_scopes(client: Any, topo: Topology, report: ApplyReport) -> None:
    owners = {row["scope"]: row["account"] for row in client.list_scope_owners()}
    for scope, owner in sorted(topo.all_scopes().items()):
        if scope not in owners:
            client.add_scope(owner, scope)
            report.change(f"added scope {scope} owned by {owner}")
        elif owners[scope] != owner:
            report.warn(f"scope {scope} is owned by {owners[scope]} in Rucio, {owner} in the topology: left as it is")


def _apply_quotas(client: Any, quotas: Mapping[str, Mapping[str, int]], report: ApplyReport) -> None:
    for account, limits in quotas.items():
        have = client.get_local_account_limits(account)
        for rse, nbytes in sorted(limits.items()):
            if have.get(rse) is None or int(have[rse]) != nbytes:
                client.set_local_account_limit(account, rse, nbytes)
                report.change(f"quota {account} at {rse} = {nbytes} bytes")
