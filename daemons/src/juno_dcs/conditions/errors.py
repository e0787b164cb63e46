"""The exception tree of the conditions service and its admin commands.

    JunoDcsError
    ├── ConfigError
    │   └── ConditionsInputError   a bad name, run range, payload or import file: the message says what and where
    ├── ConditionsError            a request the data does not allow (permanent)
    │   ├── NotFound               unknown tag or folder, or no interval of validity covers the run
    │   ├── Conflict               the tag is locked, exists already with other content, a folder's type differs
    │   └── MapTooLarge            the tag has more intervals than one IOV map may carry (413: read run by run)
    └── ServiceError
        └── DatabaseUnavailable    the database does not answer (transient: the service answers 503)
"""

from __future__ import annotations

from juno_dcs.errors import ConfigError, JunoDcsError, ServiceError


class ConditionsInputError(ConfigError):
    """Input that fails validation; the message names the field or file and the reason."""


class ConditionsError(JunoDcsError):
    """A request the condition data does not allow."""


class NotFound(ConditionsError):
    """An unknown global tag, folder or payload, or a run no interval of validity covers."""


class Conflict(ConditionsError):
    """A write that would change something immutable (a locked tag, a folder's payload type)."""


class MapTooLarge(ConditionsError):
    """The tag's IOV map would be larger than the service sends in one answer."""

    http_status = 413


class DatabaseUnavailable(ServiceError):
    """The conditions database did not answer; retrying later may help."""

    transient = True
