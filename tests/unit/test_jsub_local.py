"""jsub's local backend really runs sub-jobs, through the CLI and the registry; reschedule re-runs only the
failed ones; remove kills running ones."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from click.testing import CliRunner, Result

from juno_dcs.jsub.cli import main
from juno_dcs.jsub.registry import Registry

CHECKOUT = Path(__file__).resolve().parents[2]

FLAKY = """
taskName: flaky
backend: {type: local, maxSubmit: 2, workDir: work}
splitter:
  mode: splitByJobvars
  jobvarLists:
    n: {type: range, first: 1, length: 4}
workflow:
  steps: [ana]
  ana:
    type: cmd
    # odd sub-jobs fail the first time (no marker file yet in the task file's directory)
    cmd: 'echo n=$(n); if [ $(( $(n) % 2 )) = 1 ] && [ ! -e ../../../ok.$(n) ]; then touch ../../../ok.$(n); exit 3; fi;
          echo $(n) > out.txt'
    outputUpload: [out.txt]
"""


def jsub(registry: Path, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--registry", str(registry), *args], catch_exceptions=False)
    return result


def test_local_task_runs_every_subjob(tmp_path: Path) -> None:
    for name in ("jobvars_local.yaml", "analyse.sh"):
        shutil.copy(CHECKOUT / "etc" / "jsub" / name, tmp_path / name)
    reg = tmp_path / "reg"
    out = jsub(reg, "create", str(tmp_path / "jobvars_local.yaml"), "--account", "alice")
    assert out.exit_code == 0, out.output
    assert "task 1 created: scan_local." in out.output
    assert "6 sub-job(s), backend local" in out.output
    out = jsub(reg, "submit", "1")
    assert out.exit_code == 0, out.output
    assert "6 finished" in out.output
    record = Registry(reg).load(1)
    assert record.work_dir is not None
    assert "/work/scans/" in record.work_dir
    work = Path(record.work_dir)
    results = sorted(work.glob("*/scan_local.*.txt"))
    assert [p.name.split(".", 3)[-1] for p in results] == [
        "e-_1MeV.txt", "e-_2MeV.txt", "mu-_1MeV.txt", "mu-_2MeV.txt", "gamma_1MeV.txt", "gamma_2MeV.txt"]
    assert "particle=gamma energy=2 seed=1005 events=5" in results[-1].read_text()
    assert (work / "00006" / f"{record.uid}.00006.log.tgz").is_file()
    out = jsub(reg, "status", "1", "--json")
    assert json.loads(out.output)["by_state"] == {"finished": 6}
    out = jsub(reg, "getlog", "1", "4", "--dest", str(tmp_path / "logs"), "--print")
    assert out.exit_code == 0
    assert "jsub: step 2/2 analyse" in out.output
    assert "analysing params.txt" in out.output
    out = jsub(reg, "ls")
    assert record.uid in out.output
    assert "submitted" in out.output


def test_reschedule_reruns_only_the_failed(tmp_path: Path) -> None:
    (tmp_path / "flaky.yaml").write_text(FLAKY)
    reg = tmp_path / "reg"
    assert jsub(reg, "create", str(tmp_path / "flaky.yaml"), "--account", "bob").exit_code == 0
    out = jsub(reg, "submit", "1")
    assert "2 failed, 2 finished" in out.output, out.output
    record = Registry(reg).load(1)
    work = Path(record.work_dir or "")
    first = {j: (work / f"{j:05d}" / "state.json").stat().st_mtime_ns for j in (2, 4)}
    status = jsub(reg, "status", "1", "--jobs").output
    assert "failed" in status
    assert "payload: exit code 3" in status
    assert "  failed     2 x payload: exit code N [e.g. sub-job 1]" in status  # one line per reason
    errors = json.loads(jsub(reg, "status", "1", "--json").output)["errors"]
    assert [(e["error_class"], e["count"], e["example"]["jobid"]) for e in errors] == [("payload", 2, 1)]
    out = jsub(reg, "reschedule", "1")
    assert "2 failed sub-job(s) rescheduled: 1, 3" in out.output, out.output
    assert json.loads(jsub(reg, "status", "1", "--json").output)["by_state"] == {"finished": 4}
    states = {j: json.loads((work / f"{j:05d}" / "state.json").read_text()) for j in (1, 2, 3, 4)}
    assert [states[j]["attempt"] for j in (1, 2, 3, 4)] == [2, 1, 2, 1]
    assert {j: (work / f"{j:05d}" / "state.json").stat().st_mtime_ns for j in (2, 4)} == first
    assert "0 failed sub-job(s) rescheduled" in jsub(reg, "reschedule", "1").output


def test_missing_output_fails_the_subjob(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "taskName: noout\nbackend: {type: local}\nsplitter: {mode: splitByEvent, njobs: 1, evtMax: 1}\n"
        "workflow: {ana: {type: cmd, cmd: 'true', outputUpload: [never.txt]}}\n")
    reg = tmp_path / "reg"
    jsub(reg, "create", str(tmp_path / "t.yaml"), "--account", "bob")
    assert "1 failed" in jsub(reg, "submit", "1").output
    rows = json.loads(jsub(reg, "status", "1", "--json", "--jobs").output)["subjobs"]
    assert rows[0]["state"] == "failed"
    assert rows[0]["exit_code"] == 1


def test_detached_run_and_remove_kills(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "taskName: sleepy\nbackend: {type: local, maxSubmit: 1}\nsplitter: {mode: splitByEvent, njobs: 3, evtMax: 1}\n"
        "workflow: {ana: {type: cmd, cmd: 'sleep 30'}}\n")
    reg = tmp_path / "reg"
    jsub(reg, "create", str(tmp_path / "t.yaml"), "--account", "bob")
    out = jsub(reg, "submit", "1", "--detach")
    assert "running in" in out.output, out.output
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        by_state = json.loads(jsub(reg, "status", "1", "--json").output)["by_state"]
        if by_state.get("running") == 1:
            break
        time.sleep(0.2)
    assert by_state == {"defined": 2, "running": 1}
    record = Registry(reg).load(1)
    pid = json.loads((Path(record.work_dir or "") / "00001" / "state.json").read_text())["pid"]
    out = jsub(reg, "remove", "1")
    assert "3 sub-job(s) cancelled" in out.output
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert "no task 1" in CliRunner().invoke(main, ["--registry", str(reg), "status", "1"]).output


def test_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("taskName: t\nsplitter: {mode: splitByEvent}\nworkflow: {detsim: {}}\n")
    result = CliRunner().invoke(main, ["--registry", str(tmp_path), "create", str(tmp_path / "t.yaml"),
                                       "--account", "a"])
    assert result.exit_code == 2  # a bad task file is bad input
    assert result.output.startswith(f"jsub: error: {tmp_path / 't.yaml'}: splitter.splitByEvent: splitByEvent needs")


def test_local_runs_the_real_juno_payloads(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "taskName: pl\nbackend: {type: local}\nsplitter: {mode: splitByEvent, totalEvents: 6, evtMaxPerJob: 3}\n"
        "workflow:\n  steps: [detsim, elecsim]\n  detsim: {particles: e+, momentums: 1.398, upload: false}\n"
        "  elecsim: {}\n")
    reg = tmp_path / "reg"
    out = jsub(reg, "create", str(tmp_path / "t.yaml"), "--account", "alice", "--submit")
    assert "2 finished" in out.output, out.output
    record = Registry(reg).load(1)
    assert (Path(record.work_dir or "") / "00002" / f"{record.uid}.00002.elecsim.root").stat().st_size > 0
