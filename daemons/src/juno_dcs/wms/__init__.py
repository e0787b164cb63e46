"""The dispatcher: PanDA-like tasks and jobs on PostgreSQL, pilot pull, brokerage, leases and retry rules."""
