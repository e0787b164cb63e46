"""jsub's errors, under the project's tree (juno_dcs.errors):

    JunoDcsError
    ├── ConfigError
    │   ├── TaskFileError      a task file is wrong (the message names the file and the field)
    │   └── SplitError         a splitter cannot make sub-jobs (lengths differ, an unknown $(var)...)
    ├── RegistryError          the local task registry has no such task, or a task is in the wrong state
    └── DataError              a Rucio operation of `jsub dataset` or of submission failed
"""

from __future__ import annotations

from juno_dcs.errors import ConfigError, JunoDcsError


class TaskFileError(ConfigError):
    """The task file does not validate."""


class SplitError(ConfigError):
    """The splitter or the $(var) substitution cannot make the sub-jobs."""


class RegistryError(JunoDcsError):
    """No such task in the registry, or the task cannot do what was asked in its state."""


class DataError(JunoDcsError):
    """Rucio refused or failed an operation."""
