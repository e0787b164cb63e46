"""`juno-dcs placement check | plan | apply`: the placement policy from the command line.

    juno-dcs placement check [--placement-dir DIR] [--topology FILE]      validate the files (exit 0 ok, 1 problems)
    juno-dcs placement plan DID [--json] [--destination EXPR ...] [--lifetime L] [--rse-expression EXPR]
    juno-dcs placement apply DID [--home DIR] [--json] [same options] [--wait SECONDS]
                                                                    exit 0 done, 3 still waiting
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from juno_dcs.clikit import EXIT_CODES_EPILOG, EXIT_FAILED, EXIT_OK, EXIT_WAITING, KitGroup, grid_settings, home_option
from juno_dcs.placement.durations import DurationError, format_duration, parse_duration

F = TypeVar("F", bound=Callable[..., Any])
APPLY_INTERVAL = 5.0  # seconds between two applications with --wait


def _common(func: F) -> F:
    func = click.option("--topology", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Topology file (default: the grid's, JUNO_DCS_ETC_DIR or the package's).")(func)
    func = click.option("--placement-dir", "policy_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Directory of raw.yaml, production.yaml and user.yaml "
                        "(default: JUNO_DCS_ETC_DIR/placement, else the package's).")(func)
    return home_option(func)


def _plan_options(func: F) -> F:
    func = click.option("--rse-expression", default=None, help="user data: where its rule goes.")(func)
    func = click.option("--lifetime", default=None, metavar="SECONDS|DURATION",
                        help="mc, rec and user data: the rules' lifetime (3600, '30 days').")(func)
    func = click.option("--destination", "destinations", multiple=True, metavar="EXPR",
                        help="mc and rec data: an RSE expression to place a copy at (repeatable).")(func)
    func = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)
    return click.argument("did")(func)


def _inputs(home: Path | None, policy_dir: Path | None, topology: Path | None) -> tuple[Any, Any, Any]:
    from juno_dcs.grid.clients import load_valid_topology
    from juno_dcs.placement.loader import load_policies

    settings = grid_settings(home, topology=topology)
    return settings, load_policies(policy_dir or settings.placement_dir), load_valid_topology(settings)


def _lifetime(text: str | None) -> int | None:
    try:
        return parse_duration(int(text) if text is not None and text.isdigit() else text)
    except DurationError as exc:
        raise click.BadParameter(exc.reason, param_hint="'--lifetime'") from None


@click.group(cls=KitGroup, epilog=EXIT_CODES_EPILOG)
def placement() -> None:
    """The data placement policy (etc/placement): check it, plan a DID's rules, apply them to the grid."""


@placement.command()
@_common
def check(home: Path | None, policy_dir: Path | None, topology: Path | None) -> None:
    """Validate the policy files against the topology (exit 0 when valid, 1 with the problems)."""
    from juno_dcs.placement.checks import advice
    from juno_dcs.placement.checks import check as check_policies
    from juno_dcs.placement.loader import POLICY_FILES, PolicyError, load_policies
    from juno_dcs.topology import TopologyError, load_topology

    settings = grid_settings(home, topology=topology)
    problems: list[Any] = []
    policies = topo = None
    try:
        policies = load_policies(policy_dir or settings.placement_dir)
    except PolicyError as exc:
        problems += exc.problems
    try:
        topo = load_topology(settings.topology_file)
    except TopologyError as exc:
        problems += exc.problems
    if policies is not None and topo is not None:
        problems += check_policies(policies, topo)
        for warning in advice(policies, topo):
            click.echo(f"warning: {warning}")
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems or policies is None:
        click.echo(f"policy NOT valid: {len(problems)} problem(s)", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"policy OK: {len(POLICY_FILES)} files, {policies.template_count} rule templates")


@placement.command()
@_plan_options
@_common
def plan(did: str, as_json: bool, destinations: tuple[str, ...], lifetime: str | None, rse_expression: str | None,
         home: Path | None, policy_dir: Path | None, topology: Path | None) -> None:
    """Show the rules the policy gives DID (no grid needed)."""
    from juno_dcs.placement.planner import PlanError
    from juno_dcs.placement.planner import plan as do_plan

    seconds = _lifetime(lifetime)
    _, policies, topo = _inputs(home, policy_dir, topology)
    try:
        rules = do_plan(did, policies, topo, destinations=list(destinations) or None, lifetime=seconds,
                        rse_expression=rse_expression)
    except PlanError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in rules], indent=2))
        return
    account = rules[0].account if rules else "-"
    click.echo(f"{did}: {len(rules)} rule(s), owned by {account}")
    rows = [("RULE", "RSE EXPRESSION", "COPIES", "LIFETIME", "SOURCE", "ACTIVITY", "AFTER")] + [
        (r.policy_rule, r.rse_expression, str(r.copies), format_duration(r.lifetime),
         r.source_replica_expression or "-", r.activity, r.after or "-") for r in rules
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@placement.command()
@_plan_options
@_common
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=0.0, metavar="SECONDS",
              help="Keep applying every few seconds until nothing waits or SECONDS have passed.")
def apply(did: str, as_json: bool, destinations: tuple[str, ...], lifetime: str | None, rse_expression: str | None,
          home: Path | None, policy_dir: Path | None, topology: Path | None, wait_seconds: float) -> None:
    """Create DID's missing rules in the running grid (exit 0 when all exist, 3 when some still wait)."""
    from juno_dcs.grid.clients import root_client
    from juno_dcs.grid.home import GridHome
    from juno_dcs.placement.applier import apply as do_apply
    from juno_dcs.placement.planner import PlanError
    from juno_dcs.placement.planner import plan as do_plan

    seconds = _lifetime(lifetime)
    settings, policies, topo = _inputs(home, policy_dir, topology)
    options: dict[str, Any] = {"destinations": list(destinations) or None, "lifetime": seconds,
                               "rse_expression": rse_expression}
    try:
        planned = do_plan(did, policies, topo, **options)
    except PlanError as exc:
        raise click.UsageError(str(exc)) from None
    grid = GridHome(settings.home)
    state = grid.load_state()
    clients: dict[str, Any] = {}

    def client_for(account: str) -> Any:
        if account not in clients:
            clients[account] = root_client(grid, state, account)
        return clients[account]

    reader = client_for(planned[0].account if planned else "root")
    deadline = time.monotonic() + wait_seconds
    while True:
        report = do_apply(reader, did, policies, topo, client_for=client_for, **options)
        remaining = deadline - time.monotonic()
        if report.done or remaining <= 0:
            break
        time.sleep(min(APPLY_INTERVAL, remaining))
    _show_report(report, as_json)
    sys.exit(EXIT_OK if report.done else EXIT_WAITING)


def _show_report(report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"did": report.did, "done": report.done,
                               "rules": [o.model_dump(mode="json") for o in report.outcomes]}, indent=2))
        return
    click.echo(f"{report.did}: {len(report.created)} created, {len(report.existing)} existing, "
               f"{len(report.waiting)} waiting")
    width = max((len(o.policy_rule) for o in report.outcomes), default=0)
    for o in report.outcomes:
        click.echo(f"  {o.status:<8}  {o.policy_rule:<{width}}  {o.rule_id or o.reason or ''}")

