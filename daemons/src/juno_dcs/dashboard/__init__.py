"""The grid's dashboard (docs/dashboard.md): `juno-dashboard serve` (one page, a JSON endpoint per panel, the
collector in a background thread) and `juno-dashboard collect`.

    config     the typed settings (etc/dashboard.yaml)
    models     the panels' JSON
    aggregate  pure logic: bucketing, series, the share-policy comparison
    db         schema `dashboard`: the collector's samples
    sources    the services' public interfaces (HTTP APIs, Rucio client, policy, metrics files, probes' store)
    collector  samples into schema `dashboard`
    service    the context the routes work with
    routes     the FastAPI application
    page       the HTML page and its script
"""
