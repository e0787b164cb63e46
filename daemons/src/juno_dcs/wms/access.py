"""Who may do what at the dispatcher (docs/security.md, "The dispatcher"): checks on the caller's verified token,
no I/O. The routes make one `Caller` per request (from the `Authorization: Bearer` header) and ask it before they
call the logic; a refusal is `PermissionDenied` (403) saying what was asked, what it needs and what the token has.

- Users (any token not of the pilot group) need `compute.create` to submit or add jobs, `compute.read` to read,
  `compute.cancel` to kill and `compute.modify` to reassign or retry. A task's owner is the token's subject; a
  task of kind `production` needs the production group. Acting on a task or job is for its owner or an admin;
  reading one is for its owner, an admin or a reader (operators); listings show a user their own tasks and jobs.
- Pilots (tokens of the pilot group, with `compute.modify`) take jobs, heartbeat and finish them, and nothing else
  but reading the queues; no other token may act as a pilot.

A `Caller` without an identity is the dispatcher with token checks off (`auth: null`): everything is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from juno_dcs.errors import ConfigError, PermissionDenied
from juno_dcs.tokens.config import ServiceAuth
from juno_dcs.tokens.verify import Identity

CREATE, READ, MODIFY, CANCEL = "compute.create", "compute.read", "compute.modify", "compute.cancel"


@dataclass(frozen=True)
class Rules:
    """The groups that carry roles (from the dispatcher's configuration)."""

    admin_group: str
    reader_groups: tuple[str, ...]
    pilot_group: str
    production_group: str

    @classmethod
    def of(cls, auth: ServiceAuth, pilot_group: str, production_group: str) -> Rules:
        return cls(admin_group=auth.admin_group, reader_groups=tuple(auth.reader_groups), pilot_group=pilot_group,
                   production_group=production_group)


@dataclass(frozen=True)
class Caller:
    identity: Identity | None  # None: token checks are off
    rules: Rules | None = None

    @property
    def subject(self) -> str | None:
        return None if self.identity is None else self.identity.subject

    def _groups(self) -> str:
        groups = self.identity.groups if self.identity else ()
        return " ".join(groups) or "none"

    def _in(self, group: str | None) -> bool:
        return self.identity is not None and group is not None and self.identity.in_group(group)

    @property
    def is_admin(self) -> bool:
        return self.identity is None or self._in(self.rules.admin_group if self.rules else None)

    @property
    def reads_all(self) -> bool:
        """Admins and readers see every task and job."""
        return self.is_admin or (self.rules is not None and any(self._in(g) for g in self.rules.reader_groups))

    # --- kinds of callers
    def user(self, scope: str, what: str) -> None:
        """A user's call: refused to pilot tokens, and to tokens without `scope`."""
        if self.identity is None or self.rules is None:
            return
        if self._in(self.rules.pilot_group):
            raise PermissionDenied(f"{what} is not for pilots: {self.identity.subject}'s token is a pilot's "
                                   f"({self.rules.pilot_group}); pilots only take jobs, report on them and read "
                                   "the queues")
        self.identity.require_scope(scope, what)

    def pilot(self, what: str) -> None:
        """A pilot's call: only tokens of the pilot group with `compute.modify`."""
        if self.identity is None or self.rules is None:
            return
        if not self._in(self.rules.pilot_group):
            raise PermissionDenied(f"{what} is for pilots: it needs a token of the {self.rules.pilot_group} group; "
                                   f"{self.identity.subject}'s token has groups: {self._groups()}")
        self.identity.require_scope(MODIFY, what)

    def reader(self, what: str) -> None:
        """Reading the queues and pilots: any valid token with `compute.read`, pilots' too."""
        if self.identity is not None:
            self.identity.require_scope(READ, what)

    # --- tasks and jobs
    def owner_of_new_task(self, named: str | None, kind: str) -> str:
        """The owner a new task gets: the token's subject. A body naming anyone else is refused; so is a production
        without the production group."""
        if self.identity is None or self.rules is None:
            if named is None:
                raise ConfigError("the task names no owner, and this dispatcher checks no tokens to take it from")
            return named
        subject = self.identity.subject
        if named is not None and named != subject:
            raise PermissionDenied(f"a task's owner is the submitter: {subject}'s token cannot submit a task owned "
                                   f"by {named!r} (leave out 'owner', or name {subject!r})")
        if kind == "production" and not self._in(self.rules.production_group):
            raise PermissionDenied(f"a production task needs a token of the {self.rules.production_group} group; "
                                   f"{subject}'s token has groups: {self._groups()}")
        return subject

    def acts_on(self, owner: str, what: str) -> None:
        """Changing a task or job (kill, reassign, retry, add jobs): its owner or an admin."""
        identity, rules = self.identity, self.rules
        if identity is None or rules is None or self.is_admin or owner == identity.subject:
            return
        raise PermissionDenied(f"{what}: it belongs to {owner!r}; only its owner or the {rules.admin_group} "
                               f"group may do that, and {identity.subject}'s token is neither")

    def reads(self, owner: str, what: str) -> None:
        """Reading a task or job: its owner, an admin or a reader."""
        identity, rules = self.identity, self.rules
        if identity is None or rules is None or self.reads_all or owner == identity.subject:
            return
        raise PermissionDenied(f"{what}: it belongs to {owner!r}; {identity.subject}'s token may read only its "
                               f"own (readers: {' '.join(rules.reader_groups)})")

    def listing_owner(self) -> str | None:
        """Whose tasks and jobs a listing shows: None (everyone's) for admins and readers, else the caller's."""
        return None if self.reads_all else self.subject
