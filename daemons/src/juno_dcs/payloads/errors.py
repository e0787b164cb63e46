"""The payloads' errors: what the CLI prints on stderr, and its exit code.

    JunoDcsError
    ├── ConfigError
    │   └── PayloadInputError      a bad argument, a missing or unreadable input, a wrong tree (exit 1)
    └── ServiceError
        └── (conditions) ConditionsUnavailable   no endpoint answered (transient, exit 3)

Condition data the tag does not have (NotFound, an open tag) is a ConditionsError (exit 1).
"""

from __future__ import annotations

from juno_dcs.errors import ConfigError


class PayloadInputError(ConfigError):
    """An argument or an input file that the step cannot use; the message says which and why."""
