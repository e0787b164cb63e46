"""FTS3 job and file states, with FTS's names and meanings."""

from __future__ import annotations

from enum import StrEnum


class FileState(StrEnum):
    SUBMITTED = "SUBMITTED"  # waiting for a slot on its link
    STAGING = "STAGING"  # source on tape: being brought online
    ACTIVE = "ACTIVE"  # copying
    ARCHIVING = "ARCHIVING"  # copied to a tape endpoint, waiting for the tape copy
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    NOT_USED = "NOT_USED"  # an alternative source that was not needed


class JobState(StrEnum):
    SUBMITTED = "SUBMITTED"
    READY = "READY"
    STAGING = "STAGING"
    ACTIVE = "ACTIVE"
    ARCHIVING = "ARCHIVING"
    FINISHED = "FINISHED"
    FINISHEDDIRTY = "FINISHEDDIRTY"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


FINAL_FILE_STATES = frozenset({FileState.FINISHED, FileState.FAILED, FileState.CANCELED, FileState.NOT_USED})
FINAL_JOB_STATES = frozenset({JobState.FINISHED, JobState.FINISHEDDIRTY, JobState.FAILED, JobState.CANCELED})


def job_state_of(file_states: list[tuple[int, FileState]], canceled: bool = False) -> JobState:
    """The job's state from its files' (file_index, state) pairs, FTS's way: rows sharing a file_index
    are alternative sources of one file, which counts as done when any of them finished."""
    by_index: dict[int, list[FileState]] = {}
    for index, state in file_states:
        by_index.setdefault(index, []).append(state)
    outcomes: list[FileState] = []
    running: list[FileState] = []
    for states in by_index.values():
        live = [s for s in states if s not in FINAL_FILE_STATES]
        if live:
            running.extend(live)
        elif FileState.FINISHED in states:
            outcomes.append(FileState.FINISHED)
        elif FileState.CANCELED in states:
            outcomes.append(FileState.CANCELED)
        else:
            outcomes.append(FileState.FAILED)
    if running:
        if FileState.ACTIVE in running:
            return JobState.ACTIVE
        if FileState.ARCHIVING in running and all(s == FileState.ARCHIVING for s in running):
            return JobState.ARCHIVING
        if FileState.STAGING in running and all(s == FileState.STAGING for s in running):
            return JobState.STAGING
        if outcomes or FileState.ARCHIVING in running or FileState.STAGING in running:
            return JobState.ACTIVE
        return JobState.SUBMITTED
    if all(o == FileState.FINISHED for o in outcomes):
        return JobState.FINISHED
    if FileState.FINISHED in outcomes:
        return JobState.FINISHEDDIRTY
    if canceled or all(o == FileState.CANCELED for o in outcomes):
        return JobState.CANCELED
    return JobState.FAILED
