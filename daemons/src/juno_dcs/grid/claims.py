"""Give Rucio's conveyor back the requests it claimed and could not move on.

Rucio's conveyor-submitter and conveyor-finisher mark each request they take (`requests.last_processed_by` and
`last_processed_at`) and then pass over it for a fixed 600 s (rucio.core.request, `processed_at_delay`: no
setting changes it). When the pass that took it fails (the judge holds the rule's locks: "Locks detected when
handling replicas"; the database dropped the connection), the request waits out the whole 600 s: a copy that
finished at the storage leaves its rule REPLICATING for ten minutes.

    release(conn, after_s=120) -> dict[state name, count]

clears the mark of every request that is still in a state its claimer takes (QUEUED for the submitter; DONE,
FAILED and the other final states for the finisher) and was marked more than `after_s` ago: had the claimer's
pass worked, the request would have left that state within seconds. The next pass takes it again. A request
being worked on right now is never older than a pass, so two claimers never hold it at once; running `release`
twice, or from two processes, does nothing more. The grid runs it in its db-stats program.
"""

from __future__ import annotations

import psycopg
from rucio.db.sqla.constants import RequestState

# the states in which the submitter (QUEUED) and the finisher (the rest) take a request (rucio.daemons.conveyor)
CLAIMED_STATES: tuple[RequestState, ...] = (
    RequestState.QUEUED,
    RequestState.DONE, RequestState.FAILED, RequestState.LOST, RequestState.SUBMISSION_FAILED,
    RequestState.NO_SOURCES, RequestState.ONLY_TAPE_SOURCES, RequestState.MISMATCH_SCHEME,
)
DEFAULT_AFTER_S = 120.0

_RELEASE = """
UPDATE rucio.requests SET last_processed_by = NULL, last_processed_at = NULL
 WHERE last_processed_by IS NOT NULL
   AND state = ANY(%(states)s)
   AND last_processed_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => %(after)s)
RETURNING state
"""


def release(conn: psycopg.Connection, after_s: float = DEFAULT_AFTER_S) -> dict[str, int]:
    """Clear the conveyor's marks older than `after_s` on requests still waiting for their claimer; how many
    per state (by name). Commits."""
    if after_s <= 0:
        raise ValueError(f"after_s must be positive, not {after_s}")
    rows = conn.execute(_RELEASE, {"states": [s.value for s in CLAIMED_STATES], "after": after_s}).fetchall()
    conn.commit()
    released: dict[str, int] = {}
    for (code,) in rows:
        name = RequestState(code).name
        released[name] = released.get(name, 0) + 1
    return released
