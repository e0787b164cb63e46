"""Pure logic of the transfer service: job states, the optimizer, submissions, configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from juno_dcs.errors import ConfigError
from juno_dcs.transfer.config import OptimizerConfig, load_config
from juno_dcs.transfer.models import SubmitError, parse_submission, storage_element
from juno_dcs.transfer.optimizer import Window, decide
from juno_dcs.transfer.states import FileState as F
from juno_dcs.transfer.states import JobState as J
from juno_dcs.transfer.states import job_state_of


@pytest.mark.parametrize(
    ("files", "canceled", "expected"),
    [
        ([(0, F.SUBMITTED), (1, F.SUBMITTED)], False, J.SUBMITTED),
        ([(0, F.ACTIVE), (1, F.SUBMITTED)], False, J.ACTIVE),
        ([(0, F.FINISHED), (1, F.SUBMITTED)], False, J.ACTIVE),
        ([(0, F.STAGING)], False, J.STAGING),
        ([(0, F.ARCHIVING), (1, F.ARCHIVING)], False, J.ARCHIVING),
        ([(0, F.FINISHED), (1, F.FINISHED)], False, J.FINISHED),
        ([(0, F.FINISHED), (1, F.FAILED)], False, J.FINISHEDDIRTY),
        ([(0, F.FAILED), (1, F.FAILED)], False, J.FAILED),
        ([(0, F.CANCELED)], True, J.CANCELED),
        ([(0, F.FINISHED), (1, F.CANCELED)], True, J.FINISHEDDIRTY),
        # alternatives of one file: a failed source and a finished one make a finished file
        ([(0, F.FAILED), (0, F.FINISHED)], False, J.FINISHED),
        ([(0, F.FAILED), (0, F.SUBMITTED)], False, J.SUBMITTED),
        ([(0, F.FINISHED), (0, F.NOT_USED)], False, J.FINISHED),
        ([(0, F.FAILED), (0, F.NOT_USED)], False, J.FAILED),
    ],
)
def test_job_state(files: list[tuple[int, F]], canceled: bool, expected: J) -> None:
    assert job_state_of(files, canceled) is expected


CFG = OptimizerConfig(start=2, min=1, max=8, interval=5, target_success=0.97)


def test_optimizer_grows_while_all_succeeds_and_queue_waits() -> None:
    d = decide(2, Window(ok=10, failed=0, throughput=50.0, queued=100, active=2), 40.0, CFG)
    assert d.limit == 2 + CFG.step  # a long queue: the larger step
    assert "increase" in d.reason
    assert decide(2, Window(ok=10, failed=0, throughput=50.0, queued=5, active=2), 40.0, CFG).limit == 3


def test_optimizer_shrinks_on_failures() -> None:
    d = decide(6, Window(ok=5, failed=5, throughput=10.0, queued=100, active=6), None, CFG)
    assert d.limit == 5
    assert "success rate 50%" in d.reason
    assert decide(6, Window(ok=1, failed=9, throughput=None, queued=10, active=6), None, CFG).limit == 3


def test_optimizer_shrinks_when_throughput_falls() -> None:
    d = decide(6, Window(ok=10, failed=0, throughput=30.0, queued=100, active=6), 60.0, CFG)
    assert d.limit == 5
    assert "throughput fell" in d.reason


def test_optimizer_keeps_bounds() -> None:
    assert decide(8, Window(ok=10, failed=0, throughput=90.0, queued=100, active=8), 80.0, CFG).limit == 8
    assert decide(1, Window(ok=0, failed=10, throughput=None, queued=100, active=1), None, CFG).limit == 1
    assert decide(50, Window(ok=0, failed=0, throughput=None, queued=0, active=0), None, CFG).limit == 8


def test_optimizer_keeps_without_queue_or_news() -> None:
    assert "no queue" in decide(4, Window(ok=3, failed=0, throughput=9.0, queued=0, active=0), None, CFG).reason
    assert "no transfer ended" in decide(4, Window(ok=0, failed=0, throughput=None, queued=9, active=4), None,
                                         CFG).reason


GOOD = {"files": [{"sources": ["davs://localhost:1/a"], "destinations": ["davs://localhost:2/b"]}]}


def test_good_submission_defaults() -> None:
    request = parse_submission(GOOD)
    assert request.params.checksum_mode() == "none"
    assert request.params.job_priority == 3
    full = parse_submission({**GOOD, "params": {"verify_checksum": "b", "bring_online": -1, "priority": 5}})
    assert full.params.checksum_mode() == "both"
    assert full.params.bring_online is None
    assert full.params.job_priority == 5


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ("text", "must be a JSON object"),
        ({}, "files: missing"),
        ({"files": []}, "files"),
        ({"files": [{"sources": [], "destinations": ["davs://h:1/b"]}]}, "files.0.sources"),
        ({"files": [{"sources": ["davs://h:1/a"], "destinations": ["davs://h:1/b", "davs://h:1/c"]}]},
         "files.0.destinations"),
        ({"files": [{"sources": ["ftp://h:1/a"], "destinations": ["davs://h:1/b"]}]}, "unsupported scheme 'ftp'"),
        ({"files": [{"sources": ["davs:///a"], "destinations": ["davs://h:1/b"]}]}, "needs a host and a path"),
        ({"files": [{"sources": ["davs://h:1/a"], "destinations": ["davs://h:1/b"], "checksum": "ADLER32:xyz"}]},
         "ALGORITHM[:HEX]"),
        ({"files": [{"sources": ["davs://h:1/a"], "destinations": ["davs://h:1/b"], "colour": 1}]},
         "files.0.colour: unknown field"),
        ({**GOOD, "params": {"retry": -1}}, "params.retry"),
        ({**GOOD, "params": {"copy_mode": "teleport"}}, "params.copy_mode"),
        ({**GOOD, "params": {"multihop": True}}, "multi-hop"),
        ({"files": [{"sources": ["davs://h:1/a"], "destinations": ["davs://h:1/b"], "source_tokens": ["x", "y"]}]},
         "2 tokens for 1 URLs"),
    ],
)
def test_bad_submissions(body: object, phrase: str) -> None:
    with pytest.raises(SubmitError) as info:
        parse_submission(body)
    assert phrase in str(info.value)


def test_storage_element_names() -> None:
    assert storage_element("davs://localhost:25010/a/b") == "davs://localhost:25010"
    assert storage_element("https://localhost:25010/a") == "davs://localhost:25010"
    assert storage_element("root://host//a") == "root://host"


# what every transfer configuration needs besides its database (the grid writes the real ones)
BASE = ("database_url: postgresql://x\ntoken_key_file: /nonexistent/key\n"
        "auth: {issuer: 'https://issuer.test/', audiences: [127.0.0.1]}\n")


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(BASE + "optimizer: {start: 0}\n")
    with pytest.raises(ConfigError, match=r"optimizer\.start"):
        load_config(path)
    path.write_text("database_url: [\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)
    path.write_text(BASE + "links: {modes: {'a b': push}}\n")
    assert load_config(path).links.mode("a", "b") == "push"
    assert load_config(path).links.mode("b", "a") == "pull"


def test_gfal2_log_level(tmp_path: Path) -> None:
    """gfal2's log defaults to warnings only; a level gfal2 does not have is refused with the field's name."""
    import logging

    from juno_dcs.transfer import copier

    path = tmp_path / "t.yaml"
    path.write_text(BASE + "")
    assert load_config(path).worker.gfal2_log == "warning"
    path.write_text(BASE + "worker: {gfal2_log: loud}\n")
    with pytest.raises(ConfigError, match=r"worker\.gfal2_log"):
        load_config(path)
    try:
        copier.set_log_level("warning")
        assert logging.getLogger("gfal2").level == logging.WARNING
        copier.set_log_level("debug")
        assert logging.getLogger("gfal2").level == logging.DEBUG
    finally:
        copier.set_log_level("warning")
