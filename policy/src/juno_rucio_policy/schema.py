"""JUNO's naming schema for Rucio. Until the JUNO name patterns land (the policy issue), it is Rucio's
generic schema unchanged: this module only re-exports it so that Rucio finds a schema in the package."""

from __future__ import annotations

from rucio.common.schema.generic import *  # noqa: F403
from rucio.common.schema.generic import SCOPE_NAME_REGEXP  # noqa: F401  (named: Rucio requires it)
