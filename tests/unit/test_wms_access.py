"""Who may do what at the dispatcher (juno_dcs.wms.access), on identities as the verifier makes them."""

from __future__ import annotations

import pytest

from juno_dcs.errors import ConfigError, PermissionDenied
from juno_dcs.tokens.scopes import parse_scopes
from juno_dcs.tokens.verify import Identity
from juno_dcs.wms.access import CANCEL, CREATE, MODIFY, READ, Caller, Rules

RULES = Rules(admin_group="/juno/admin", reader_groups=("/juno/admin", "/juno/ops"), pilot_group="/juno/pilots",
              production_group="/juno/production")
COMPUTE = "compute.create compute.read compute.modify compute.cancel"


def caller(subject: str, scope: str = COMPUTE, *groups: str) -> Caller:
    identity = Identity(subject=subject, client_id=subject, scopes=tuple(parse_scopes(scope)),
                        groups=("/juno", *groups), expires=2**31, token_id="jti-1")
    return Caller(identity, RULES)


ALICE = caller("alice")
ROOT = caller("root", COMPUTE, "/juno/admin")
PRODUCTION = caller("production", COMPUTE, "/juno/production")
PILOT = caller("pilot", "compute.read compute.modify", "/juno/pilots")
DASHBOARD = caller("dashboard", "compute.read", "/juno/ops")


def test_the_owner_is_the_subject() -> None:
    assert ALICE.owner_of_new_task(None, "user") == "alice"
    assert ALICE.owner_of_new_task("alice", "user") == "alice"
    with pytest.raises(PermissionDenied, match="cannot submit a task owned by 'bob'"):
        ALICE.owner_of_new_task("bob", "user")
    with pytest.raises(PermissionDenied, match="cannot submit a task owned by 'alice'"):
        ROOT.owner_of_new_task("alice", "user")  # not even an admin submits in another's name


def test_productions_need_the_production_group() -> None:
    assert PRODUCTION.owner_of_new_task(None, "production") == "production"
    with pytest.raises(PermissionDenied, match="/juno/production group"):
        ALICE.owner_of_new_task(None, "production")


def test_pilots_and_users_keep_to_their_calls() -> None:
    PILOT.pilot("taking a job")
    PILOT.reader("reading the queues")
    with pytest.raises(PermissionDenied, match="not for pilots"):
        PILOT.user(CREATE, "submitting a task")
    with pytest.raises(PermissionDenied, match="not for pilots"):
        PILOT.user(READ, "listing tasks")
    for user in (ALICE, ROOT, PRODUCTION):
        with pytest.raises(PermissionDenied, match="is for pilots"):
            user.pilot("taking a job")
    without_modify = caller("pilot", "compute.read", "/juno/pilots")
    with pytest.raises(PermissionDenied, match=r"compute\.modify"):
        without_modify.pilot("taking a job")


@pytest.mark.parametrize("scope", [CREATE, READ, MODIFY, CANCEL])
def test_each_action_needs_its_scope(scope: str) -> None:
    others = " ".join(s for s in COMPUTE.split() if s != scope)
    with pytest.raises(PermissionDenied, match=f"scope '{scope}'"):
        caller("alice", others).user(scope, "doing it")
    caller("alice", scope).user(scope, "doing it")


def test_acting_and_reading_others_things() -> None:
    ALICE.acts_on("alice", "killing task 1")
    ROOT.acts_on("bob", "killing task 1")
    with pytest.raises(PermissionDenied, match="belongs to 'bob'"):
        ALICE.acts_on("bob", "killing task 1")
    with pytest.raises(PermissionDenied, match="belongs to 'bob'"):
        DASHBOARD.acts_on("bob", "killing task 1")  # readers read, they do not act
    DASHBOARD.reads("bob", "reading task 1")
    with pytest.raises(PermissionDenied, match="may read only its own"):
        ALICE.reads("bob", "reading task 1")
    assert (ALICE.listing_owner(), ROOT.listing_owner(), DASHBOARD.listing_owner()) == ("alice", None, None)


def test_checks_off_allow_everything_but_need_an_owner() -> None:
    open_caller = Caller(identity=None)
    open_caller.user(CREATE, "x")
    open_caller.pilot("x")
    open_caller.acts_on("bob", "x")
    assert open_caller.listing_owner() is None
    assert open_caller.owner_of_new_task("bob", "production") == "bob"
    with pytest.raises(ConfigError, match="names no owner"):
        open_caller.owner_of_new_task(None, "user")
