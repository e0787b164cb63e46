"""Condition data: global tags -> folders -> intervals of validity by run range -> immutable payloads.

    models   names, run ranges, typed payloads, the export file (the typed boundary)
    db       SQL only (SQLAlchemy Core; MariaDB through PyMySQL in the grid, SQLite in unit tests)
    logic    the admin writes (one transaction each) and the service's read-only lookups
    routes   the read-only HTTP API (FastAPI) with cacheable URLs; __main__ runs it (uvicorn)
    client   the jobs' library: proxies then servers, timeouts, failover, an in-process cache
    cli      `juno-dcs conditions ...`, the admin commands (through the writer account)
    grid     what the grid launcher needs: Squid configs, program command lines, database provisioning
"""
