"""Default quotas of USER accounts: user.yaml's `quota` at the RSEs of its `quota_rse_expression`,
wherever the topology sets no quota for that user (a topology quota, "*" included, always wins)."""

from __future__ import annotations

from juno_dcs.placement.models import UserPolicy
from juno_dcs.placement.rse_expr import evaluate
from juno_dcs.topology import Topology


def default_user_quotas(topology: Topology, user_policy: UserPolicy) -> dict[str, dict[str, int]]:
    """USER account -> RSE -> bytes, only for the (account, RSE) pairs the topology leaves unset."""
    rses = evaluate(user_policy.quota_rse_expression, topology)
    resolved = topology.resolved_quotas()
    defaults: dict[str, dict[str, int]] = {}
    for name, account in sorted(topology.accounts.items()):
        if account.type != "USER":
            continue
        unset = {rse: user_policy.quota for rse in rses if rse not in resolved.get(name, {})}
        if unset:
            defaults[name] = unset
    return defaults


def user_quotas(topology: Topology, user_policy: UserPolicy) -> dict[str, dict[str, int]]:
    """Every USER account's quotas: the topology's and the defaults together."""
    resolved = topology.resolved_quotas()
    defaults = default_user_quotas(topology, user_policy)
    return {
        name: dict(sorted({**resolved.get(name, {}), **defaults.get(name, {})}.items()))
        for name, account in sorted(topology.accounts.items()) if account.type == "USER"
    }
