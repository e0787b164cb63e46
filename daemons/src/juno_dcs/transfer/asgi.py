"""The ASGI application for uvicorn's worker processes: built from $JUNO_FTS_CONFIG when a worker imports it."""

from __future__ import annotations

import os
from pathlib import Path

from juno_dcs.transfer import db
from juno_dcs.transfer.config import load_config
from juno_dcs.transfer.routes import create_app

_config = load_config(Path(os.environ["JUNO_FTS_CONFIG"]))
app = create_app(_config, db.open_pool(_config.database_url, size=_config.api_db_connections))
