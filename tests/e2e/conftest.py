"""The e2e stories, each started once per session on the shared grid by the account whose story it is: SPADE's
day (as `rawdata`), a production (as `production`), a user task (as `alice`). A story's test waits for it and
checks what its user would check. Every name is new (a stream, a production, a task), so other tests on
the grid are no bother."""

from __future__ import annotations

import pytest

from tests.conftest import Grid
from tests.e2e.shell import Shell
from tests.e2e.stories import DataTakingDay, MonteCarloProduction, UserTask


@pytest.fixture(scope="session")
def data_taking_day(grid: Grid, tmp_path_factory: pytest.TempPathFactory) -> DataTakingDay:
    day = DataTakingDay(Shell(grid, "rawdata", tmp_path_factory.mktemp("spade")))
    day.start()
    return day


@pytest.fixture(scope="session")
def production(grid: Grid, tmp_path_factory: pytest.TempPathFactory) -> MonteCarloProduction:
    prod = MonteCarloProduction(Shell(grid, "production", tmp_path_factory.mktemp("production")))
    prod.start()
    return prod


@pytest.fixture(scope="session")
def user_task(grid: Grid, tmp_path_factory: pytest.TempPathFactory) -> UserTask:
    where = tmp_path_factory.mktemp("alice")
    task = UserTask(Shell(grid, "alice", where, extra_env={"JSUB_HOME": str(where / "jsub")}))
    task.start()
    return task


@pytest.fixture(scope="session", autouse=True)
def _stories_side_by_side(data_taking_day: DataTakingDay, production: MonteCarloProduction,
                          user_task: UserTask) -> None:
    """The three stories start together, at the first e2e test, whichever it is: each then waits only for what
    is left of its own story, and the e2e part lasts as long as the longest story, not the sum of them."""
