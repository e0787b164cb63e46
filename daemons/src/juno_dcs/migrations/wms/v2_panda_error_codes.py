"""Version 2 of schema wms: the pilot's error codes of release 0.1 become PanDA's numbers of the same meaning.

    old -> new   1137 memory -> 1235, 1150 payload -> 1305, 1152 walltime -> 1213, 1200 stageout -> 1137,
                 1300 lost -> 1201, 1400 killed -> 1144        (juno_dcs.wms.models.OLD_ERROR_CODES)

1137 is both an old code (memory) and a new one (stageout), so each table is rewritten by one statement with
CASE (never 1200 -> 1137 and then 1137 -> 1235). The map is frozen here, not imported. A row is rewritten only
when its code still has its old meaning: jobs store the error class next to the code (a job with an old code
and class `memory` becomes 1235; one with 1137 and class `stageout` was already written by the new pilot and
stays), and the history's reasons read "error CODE (CLASS)". So the statements are idempotent as well as run
once by the version.
"""

from __future__ import annotations

from alembic import op

revision = "2"
down_revision = "1"
branch_labels = None
depends_on = None

# old code -> (its class, the new code)
OLD: dict[int, tuple[str, int]] = {
    1137: ("memory", 1235), 1150: ("payload", 1305), 1152: ("walltime", 1213), 1200: ("stageout", 1137),
    1300: ("lost", 1201), 1400: ("killed", 1144),
}


def _jobs() -> str:
    cases = " ".join(f"WHEN {old} THEN {new}" for old, (_cls, new) in OLD.items())
    still_old = " OR ".join(f"(error_code = {old} AND coalesce(error_class, '{cls}') = '{cls}')"
                            for old, (cls, _new) in OLD.items())
    return f"UPDATE wms.jobs SET error_code = CASE error_code {cases} END WHERE {still_old}"  # noqa: S608 (constants)


def _history() -> str:
    reason = "reason"
    for old, (cls, new) in OLD.items():  # nested, one statement: no output of one pattern matches another
        reason = f"regexp_replace({reason}, 'error {old} \\({cls}\\)', 'error {new} ({cls})', 'g')"
    patterns = "|".join(f"{old} \\({cls}\\)" for old, (cls, _new) in OLD.items())
    return f"UPDATE wms.job_history SET reason = {reason} WHERE reason ~ 'error ({patterns})'"  # noqa: S608 (constants)


def upgrade() -> None:
    op.execute(_jobs())
    op.execute(_history())


def downgrade() -> None:
    raise NotImplementedError("the old codes meant other things at PanDA: no way back")
