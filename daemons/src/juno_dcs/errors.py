"""The exception tree of juno_dcs: everything the project raises on purpose is a JunoDcsError.

    JunoDcsError                 http 500   exit 1
    ├── ConfigError              http 400   exit 2   bad settings, a bad file or a bad argument: fix the input
    │   └── NotFound             http 404   exit 2   the thing named does not exist
    ├── PermissionDenied         http 403   exit 1   the caller may not do this
    ├── GridStateError           http 409   exit 1   the grid (or a record) is not in a state that allows it
    │   └── Conflict             http 409   exit 1   the request clashes with what is stored
    ├── StillWaiting             http 202   exit 3   done what could be done; the rest is pending
    └── ServiceError             http 502   exit 1   a service did not answer or failed
        ├── ServiceTimeout       http 504   exit 1   it did not become ready in time (transient: retrying may help)
        └── Unavailable          http 503   exit 3   it does not answer now (transient: retrying later may help)

The project's other errors derive from these, e.g.
TopologyError and PolicyError (ConfigError), juno_dcs.transfer.logic.NotFound (NotFound),
juno_dcs.wms.logic.WmsLogicError, the conditions' NotFound and Conflict, DatabaseUnavailable (Unavailable).
Errors raised inside pydantic validators (TopologyValueError, PolicyValueError, ...) also derive from ValueError,
as pydantic requires; the policy package (juno_rucio_policy) is loaded by Rucio without juno_dcs and keeps its
own ValueErrors.

Each error carries its HTTP status (`http_status`) for the routes that return it and its exit code (`exit_code`)
for the command lines: each service maps the tree to responses in one place, and juno_dcs.clikit maps it to exit
codes. The message is meant for the person at the terminal or the client of the API.
"""

from __future__ import annotations


class JunoDcsError(Exception):
    """Base of every error this project raises on purpose."""

    transient: bool = False
    http_status: int = 500
    exit_code: int = 1


class ConfigError(JunoDcsError):
    """A setting, a file, a request or an argument is wrong; retrying does not help."""

    http_status = 400
    exit_code = 2


class NotFound(ConfigError):
    """The job, task, transfer, tag or file named does not exist."""

    http_status = 404


class PermissionDenied(JunoDcsError):
    """The caller is known but may not do this."""

    http_status = 403


class Unauthenticated(PermissionDenied):
    """No credential, or one that is not valid (bad signature, expired, another issuer or audience)."""

    http_status = 401


class GridStateError(JunoDcsError):
    """The grid's home is missing, or the grid or a record is not in the state the command needs."""

    http_status = 409


class Conflict(GridStateError):
    """The request clashes with what is stored (a different payload under the same name, a locked tag)."""


class StillWaiting(JunoDcsError):
    """What could be done is done; the rest is pending (a `--wait` that ran out)."""

    http_status = 202
    exit_code = 3


class ServiceError(JunoDcsError):
    """A service of the grid failed or answered wrongly."""

    http_status = 502


class ServiceTimeout(ServiceError):
    """A service did not become ready within its deadline."""

    transient = True
    http_status = 504


class Unavailable(ServiceError):
    """A service (or its database) does not answer now; retrying later may help."""

    transient = True
    http_status = 503
    exit_code = 3
