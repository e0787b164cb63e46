"""Schema migrations (Alembic) of every database this project owns.

    registry.py   which schemas exist: their name, database kind and directory of versions
    runner.py     upgrade to head (under a lock), read the versions; the grid's `up` and the tests call it
    check.py      the programs' start-up check: their schema is at head, or they refuse with a clear message
    <schema>/     one directory of versions per schema (plain Alembic scripts: v1_*.py, v2_*.py, ...)

Adding a schema is one directory of versions (v1 creates its tables) plus one entry in registry.SCHEMAS.
"""
