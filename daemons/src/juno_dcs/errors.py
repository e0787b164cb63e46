"""The exception tree of juno_dcs.

    JunoDcsError                 anything this project raises on purpose
    ├── ConfigError              bad settings, a bad file or a bad argument: permanent, fix the input
    ├── GridStateError           the grid is not in a state that allows the command (not set up, not running)
    └── ServiceError             a service did not answer or failed
        └── ServiceTimeout       it did not become ready in time (transient: retrying may help)

Every error carries a message meant for the person at the terminal; the CLI prints it and exits non-zero.
"""

from __future__ import annotations


class JunoDcsError(Exception):
    """Base of every error this project raises on purpose."""

    transient: bool = False


class ConfigError(JunoDcsError):
    """A setting, a file or an argument is wrong; retrying does not help."""


class GridStateError(JunoDcsError):
    """The grid's home is missing, or not in the state the command needs."""


class ServiceError(JunoDcsError):
    """A service of the grid failed or answered wrongly."""


class ServiceTimeout(ServiceError):
    """A service did not become ready within its deadline."""

    transient = True
