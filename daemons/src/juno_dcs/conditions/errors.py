"""The exception tree of the conditions service and its admin commands.

    JunoDcsError
    ├── ConfigError
    │   └── ConditionsInputError   a bad name, run range, payload or import file: the message says what and where
    ├── ConditionsError            a request the data does not allow (permanent)
    │   ├── NotFound               unknown tag or folder, or no interval of validity covers the run (404; also
    │   │                          a juno_dcs.errors.NotFound)
    │   ├── Conflict               the tag is locked, exists already with other content, a folder's type differs
    │   │                          (409; also a juno_dcs.errors.Conflict)
    │   └── MapTooLarge            the tag has more intervals than one IOV map may carry (413: read run by run)
    └── ServiceError
        └── Unavailable
            └── DatabaseUnavailable    the database does not answer (transient: the service answers 503)
"""

from __future__ import annotations

from juno_dcs import errors
from juno_dcs.errors import ConfigError, JunoDcsError, Unavailable


class ConditionsInputError(ConfigError):
    """Input that fails validation; the message names the field or file and the reason."""


class ConditionsError(JunoDcsError):
    """A request the condition data does not allow."""


class NotFound(ConditionsError, errors.NotFound):
    """An unknown global tag, folder or payload, or a run no interval of validity covers."""


class Conflict(ConditionsError, errors.Conflict):
    """A write that would change something immutable (a locked tag, a folder's payload type)."""


class MapTooLarge(ConditionsError):
    """The tag's IOV map would be larger than the service sends in one answer."""

    http_status = 413


class DatabaseUnavailable(Unavailable):
    """The conditions database did not answer; retrying later may help."""
