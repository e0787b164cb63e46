"""One job in a pilot with a fake dispatcher and a fake stager: every error code, the report, the clean-up."""

from __future__ import annotations

import sys
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from juno_dcs.pilot.job import PilotSettings, run_job
from juno_dcs.pilot.stager import StageInError, adler32_of
from juno_dcs.wms.client import WmsError
from juno_dcs.wms.models import FinishReport, JobDescription, OutputFile

PY = sys.executable


class FakeDispatcher:
    timeout = 1.0

    def __init__(self, command: str = "continue", status: int | None = None) -> None:
        self.command, self.status = command, status
        self.beats: list[str] = []
        self.finished: list[FinishReport] = []

    def heartbeat(self, job_id: int, pilot_id: str, state: str) -> str:
        self.beats.append(state)
        if self.status:
            raise WmsError(self.status, "not yours")
        return self.command

    def finish(self, job_id: int, pilot_id: str, report: FinishReport) -> dict[str, Any]:
        self.finished.append(report)
        return {"state": report.state}


class FakeStager:
    def __init__(self, store: Path, fail_in: bool = False) -> None:
        self.store, self.fail_in = store, fail_in
        self.uploaded: dict[str, bytes] = {}

    def stage_in(self, did: str, destination: Path, near: str) -> Path:
        if self.fail_in:
            raise StageInError(f"{did}: no replica")
        name = did.split(":", 1)[1]
        (destination / name).write_bytes((self.store / name).read_bytes())
        return destination / name

    def stage_out(self, path: Path, scope: str, name: str, dataset: str, rse: str) -> OutputFile:
        if not path.is_file():
            raise StageInError(f"{name}: not written")
        self.uploaded[name] = path.read_bytes()
        return OutputFile(scope=scope, name=name, bytes=path.stat().st_size, adler32=adler32_of(path), rse=rse)


def job(args: list[str], **extra: Any) -> JobDescription:
    fields: dict[str, Any] = {
        "key": "k1", "transformation": "exec", "args": args, "job_id": 7, "task_id": 1, "task_name": "t",
        "owner": "production", "attempt": 1, "site": "IHEP", "queue": "IHEP", "output_rse": "IHEP_DISK",
        "lease_s": 30, "walltime_s": 60, "memory_mb": 100,
        "log": {"scope": "mc", "name": "mc.c.t.detsim.000007.log.tgz", "dataset": "mc:mc.c.t.detsim.log"}}
    fields.update(extra)
    return JobDescription.model_validate(fields)


def settings(tmp_path: Path, **extra: Any) -> PilotSettings:
    values: dict[str, Any] = {"dispatcher": "http://x", "site": "IHEP", "queue": "IHEP", "cores": 1,
                              "memory_mb": 400, "walltime_s": 3600, "lifetime_s": 3600,
                              "workdir": tmp_path / "work", "rucio_configs": tmp_path, "pilot_id": "p1",
                              "poll_s": 0.1, "grace_s": 0.5, "heartbeat_s": 0.2}
    values.update(extra)
    return PilotSettings(**values)


def go(tmp_path: Path, description: JobDescription, dispatcher: FakeDispatcher | None = None,
       stager: FakeStager | None = None, **extra: Any) -> tuple[FinishReport | None, FakeDispatcher, FakeStager]:
    dispatcher = dispatcher or FakeDispatcher()
    stager = stager or FakeStager(tmp_path)
    report = run_job(description, settings(tmp_path, **extra), dispatcher,  # type: ignore[arg-type]
                     lambda s, owner: stager, threading.Event())
    assert not list((tmp_path / "work").iterdir()), "the job's directory is removed"
    return report, dispatcher, stager


WRITE = "import sys; open(sys.argv[1], 'w').write(open(sys.argv[2]).read().upper()); print('done')"


def test_success_stages_in_runs_and_stages_out(tmp_path: Path) -> None:
    (tmp_path / "mc.c.t.detsim.000001.root").write_text("events")
    description = job([PY, "-c", WRITE, "mc.c.t.elecsim.000001.root", "mc.c.t.detsim.000001.root"],
                      inputs=["mc:mc.c.t.detsim.000001.root"],
                      outputs=[{"scope": "mc", "name": "mc.c.t.elecsim.000001.root", "dataset": "mc:mc.c.t.elecsim"}])
    report, dispatcher, stager = go(tmp_path, description)
    assert report is not None
    assert report.state == "finished"
    assert report.exit_code == 0
    assert [o.name for o in report.outputs] == ["mc.c.t.elecsim.000001.root"]
    assert stager.uploaded["mc.c.t.elecsim.000001.root"] == b"EVENTS"
    assert report.log is not None
    assert report.resources.wall_s > 0
    assert dispatcher.finished == [report]
    assert dispatcher.beats[0] == "starting"
    tarball = tmp_path / "log.tgz"
    tarball.write_bytes(stager.uploaded["mc.c.t.detsim.000007.log.tgz"])
    with tarfile.open(tarball) as tar:
        names = sorted(Path(n).name for n in tar.getnames())
        assert names == ["job.json", "payload.stderr", "payload.stdout", "pilot.log"]
        pilot_log = tar.extractfile("job-7-1/pilot.log").read().decode()  # type: ignore[union-attr]
        assert "payload started" in pilot_log


@pytest.mark.parametrize(("args", "code", "diag"), [
    ([PY, "-c", "import sys; sys.stderr.write('bad input'); sys.exit(4)"], 1305, "exited with code 4: bad input"),
    ([PY, "-c", "import time; b = bytearray(250 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
                "time.sleep(20)"], 1235, "more than the limit of 150 MB"),
    (["sleep", "20"], 1213, "longer than its walltime of 1 s"),
])
def test_payload_errors(tmp_path: Path, args: list[str], code: int, diag: str) -> None:
    report, _, stager = go(tmp_path, job(args, walltime_s=1 if code == 1213 else 60), memory_mb=150)
    assert report is not None
    assert (report.state, report.error_code) == ("failed", code)
    assert diag in report.error_diag
    assert "mc.c.t.detsim.000007.log.tgz" in stager.uploaded, "a failed job's log is uploaded too"


def test_memory_limit_is_the_slot_share_of_the_job(tmp_path: Path) -> None:
    """A 2-core slot of 300 MB gives a 1-core job 150 MB."""
    hog = [PY, "-c", "import time; b = bytearray(200 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
                     "time.sleep(20)"]
    report, _, _ = go(tmp_path, job(hog), cores=2, memory_mb=300)
    assert report is not None
    assert report.error_code == 1235
    assert "limit of 150 MB" in report.error_diag


def test_kill_command(tmp_path: Path) -> None:
    report, _, _ = go(tmp_path, job(["sleep", "20"]), dispatcher=FakeDispatcher(command="kill"))
    assert report is not None
    assert (report.error_code, report.error_class) == (1144, "killed")


def test_stagein_error(tmp_path: Path) -> None:
    report, _, _ = go(tmp_path, job(["true"], inputs=["mc:mc.c.t.detsim.000001.root"]),
                           stager=FakeStager(tmp_path, fail_in=True))
    assert report is not None
    assert (report.error_code, report.exit_code) == (1099, None)
    assert "no replica" in report.error_diag


def test_missing_output_is_a_stageout_error(tmp_path: Path) -> None:
    description = job(["true"], outputs=[{"scope": "mc", "name": "mc.c.t.rec.000001.root",
                                          "dataset": "mc:mc.c.t.rec"}])
    report, _, _ = go(tmp_path, description)
    assert report is not None
    assert report.error_code == 1137


def test_job_no_longer_ours_is_not_reported(tmp_path: Path) -> None:
    report, dispatcher, _ = go(tmp_path, job(["sleep", "20"]), dispatcher=FakeDispatcher(status=409))
    assert report is None
    assert dispatcher.finished == []


def test_payload_command_for_juno_steps(tmp_path: Path) -> None:
    fake = tmp_path / "juno-payload"
    fake.write_text("#!/bin/sh\necho \"$@\" > args.txt\ncp args.txt mc.c.t.detsim.000001.root\n")
    fake.chmod(0o755)
    description = job(["--evtmax", "3"], transformation="detsim",
                      outputs=[{"scope": "mc", "name": "mc.c.t.detsim.000001.root", "dataset": "mc:mc.c.t.detsim"}])
    report, _, stager = go(tmp_path, description, payload_program=str(fake))
    assert report is not None
    assert report.state == "finished", report.error_diag
    assert stager.uploaded["mc.c.t.detsim.000001.root"] == b"detsim --evtmax 3\n"
