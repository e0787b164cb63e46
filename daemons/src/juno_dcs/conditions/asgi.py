"""The ASGI application for uvicorn's worker processes: built from $JUNO_CONDITIONS_CONFIG when a worker
imports it (each worker has its own read-only connection pool; any number of workers and instances may run)."""

from __future__ import annotations

import os
from pathlib import Path

from juno_dcs.conditions import db
from juno_dcs.conditions.config import load_config
from juno_dcs.conditions.routes import create_app

_config = load_config(Path(os.environ["JUNO_CONDITIONS_CONFIG"]))
app = create_app(_config, db.make_engine(_config.database_url, pool_size=_config.pool_size, read_only=True,
                                         timeout=_config.db_timeout))
