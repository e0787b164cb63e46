"""The ASGI application for uvicorn's worker processes: built from $JUNO_WMS_CONFIG when a worker imports it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from juno_dcs.wms import db
from juno_dcs.wms.config import load_config
from juno_dcs.wms.routes import create_app
from juno_dcs.wms.service import context, gate

_config = load_config(Path(os.environ["JUNO_WMS_CONFIG"]))
if _config.auth is None:
    logging.getLogger(__name__).warning("token checks are off (auth: null): every caller may do everything")
app = create_app(context(_config), db.open_pool(_config.database_url, size=_config.pool_size),
                 db.async_pool(_config.database_url, size=_config.pool_size), gate(_config))
