"""The JUNO Rucio policy package.

Rucio loads it by name (`[policy] package = juno_rucio_policy` in rucio.cfg, or RUCIO_POLICY_PACKAGE), on the
server and in clients alike, so it imports nothing of the juno_dcs daemons. It holds:

- naming: JUNO's scopes and name patterns (the single source for the rest);
- schema: Rucio's generic schema with JUNO's scopes, names and activities;
- permission: who may write which scope and change which rules;
- tokencache: a memory backend for Rucio's token cache where Rucio has none (no memcached), and the transfertool's
  per-file token claims (audience, scope) kept for a minute;
- the algorithms registered below, each under the name "juno": lfn2pfn and pfn2lfn (paths.py), scope
  extraction (scope.py) and the tape-metadata plugin for FTS (tape.py).

The grid's rucio.cfg selects them: `[policy] lfn2pfn_algorithm_default = juno`, `extract_scope = juno`,
`pfn2lfn = juno`, and `[transfers] fts3tape_metadata_plugins = juno`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SUPPORTED_VERSION = ">=41.0,<42.0"
ALGORITHM_NAME = "juno"


def get_algorithms() -> dict[str, dict[str, Callable[..., Any]]]:
    """The algorithms this package registers with Rucio, by type and name.

    Rucio swallows an ImportError raised here, so the imports are at call time and a test calls this.
    Rucio asks for them in every daemon that moves or deletes files, before it asks the issuer for any token:
    the place to give its token cache a backend (tokencache.py). Clients ask for them too (the `rucio` CLI, to
    extract the scope of every DID it is given), and they have neither tokens to cache nor transfers to submit:
    importing Rucio's server side for those cost every `rucio` command about 1 s of CPU."""
    from rucio.common.config import is_client

    from juno_rucio_policy import paths, scope, tape, tokencache

    if not is_client():
        tokencache.cache_tokens_in_memory()
        tokencache.remember_rse_claims()

    return {
        "lfn2pfn": {ALGORITHM_NAME: paths.lfn2pfn},
        "pfn2lfn": {ALGORITHM_NAME: paths.pfn2lfn},
        "scope": {ALGORITHM_NAME: scope.extract_scope},
        "fts3_tape_metadata_plugins": {ALGORITHM_NAME: tape.collocation_hints},
    }
