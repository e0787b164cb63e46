"""JUNO's data placement policy: which rules each DID gets (etc/placement/*.yaml), planned offline and applied
to Rucio idempotently.

    loader     load_policies(directory) -> Policies; PolicyError lists every problem (file, line, field)
    checks     check(policies, topology) -> errors; advice(...) -> warnings
    rse_expr   evaluate(expression, topology) -> RSE names, as Rucio would, without a server
    planner    plan(did, policies, topology, ...) -> [PlannedRule]
    applier    apply(client, did, policies, topology, ...) -> ApplyReport; decide(...) is its pure core
    quotas     default_user_quotas(topology, user_policy)
    cli        `juno-dcs placement check | plan | apply`

Exceptions (all juno_dcs.errors.ConfigError): PolicyError, PlanError (BadDid, NotPlannable), DidNotFound.
"""

from juno_dcs.placement.applier import ApplyReport, DidNotFound, ExistingRule, RuleOutcome, apply, decide
from juno_dcs.placement.checks import advice, check
from juno_dcs.placement.loader import Policies, PolicyError, load_policies
from juno_dcs.placement.planner import BadDid, NotPlannable, PlanError, PlannedRule, plan
from juno_dcs.placement.quotas import default_user_quotas
from juno_dcs.placement.rse_expr import RSEExpressionError, evaluate

__all__ = [
    "ApplyReport", "BadDid", "DidNotFound", "ExistingRule", "NotPlannable", "PlanError", "PlannedRule", "Policies",
    "PolicyError", "RSEExpressionError", "RuleOutcome", "advice", "apply", "check", "decide", "default_user_quotas",
    "evaluate", "load_policies", "plan",
]
