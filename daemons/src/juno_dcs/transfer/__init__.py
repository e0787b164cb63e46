"""An FTS3-REST-compatible transfer service: the unmodified Rucio conveyor and `fts3` client submit jobs to
it, and its workers run real third-party copies with gfal2 between the grid's XRootD storage elements.

Layers: models (request and state types) -> db (SQL only) -> logic (FTS semantics, no web framework) ->
routes (HTTP, FastAPI) and worker (copies, optimizer) -> __main__ (CLI)."""
