"""The pilot's payload monitor with real processes: memory of the whole tree, walltime, kill, CPU, exit codes."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from juno_dcs.pilot.watch import Limits, run_payload

PY = sys.executable
# holds `mb` MB of touched memory for `hold` seconds, then exits 0
ALLOC = "import sys, time; b = bytearray(int(sys.argv[1]) * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); " \
        "time.sleep(float(sys.argv[2]))"


def _run(tmp_path: Path, command: list[str], *, memory_mb: float = 10_000, walltime_s: float = 60,
         kill: threading.Event | None = None, stop: threading.Event | None = None):  # type: ignore[no-untyped-def]
    return run_payload(command, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
                       limits=Limits(memory_limit_mb=memory_mb, walltime_s=walltime_s, poll_s=0.1, grace_s=1.0),
                       stop=stop or threading.Event(), kill=kill or threading.Event(),
                       stdout=tmp_path / "out", stderr=tmp_path / "err")


def test_exit_code_and_output(tmp_path: Path) -> None:
    result = _run(tmp_path, [PY, "-c", "import sys; print('hello'); sys.exit(3)"])
    assert result.exit_code == 3
    assert result.reason is None
    assert (tmp_path / "out").read_text() == "hello\n"


def _interpreter_mb(tmp_path: Path) -> float:
    """The resident memory of the same interpreter holding nothing (the payload's own measure, VmRSS)."""
    out = subprocess.run([PY, "-c", "print([l.split()[1] for l in open('/proc/self/status') if "
                          "l.startswith('VmRSS')][0])"], capture_output=True, text=True, check=True, cwd=tmp_path)
    return int(out.stdout) / 1024


def test_within_memory_limit(tmp_path: Path) -> None:
    """60 MB touched: the tree's peak is those 60 MB plus the interpreter (its own VmRSS, measured apart), not the
    limit, not the virtual size."""
    result = _run(tmp_path, [PY, "-c", ALLOC, "60", "1.0"], memory_mb=300)
    assert (result.exit_code, result.reason) == (0, None)
    assert 60 <= result.max_rss_mb <= 60 + _interpreter_mb(tmp_path) + 10, result.max_rss_mb


def test_memory_limit_kills(tmp_path: Path) -> None:
    start = time.monotonic()
    result = _run(tmp_path, [PY, "-c", ALLOC, "250", "30"], memory_mb=120)
    assert result.reason == "memory"
    assert result.exit_code == -9
    # killed at the first sample over the limit: the peak it reports is the one it names, and no more than the
    # payload can hold (250 MB and its interpreter)
    assert 120 < result.max_rss_mb <= 250 + _interpreter_mb(tmp_path) + 10, result.max_rss_mb
    named = re.fullmatch(r"the payload's processes used (\d+) MB of resident memory, more than the limit of 120 MB",
                         result.detail)
    assert named is not None, result.detail
    assert abs(int(named[1]) - result.max_rss_mb) <= 0.55  # the same sample, rounded to MB and to 0.1 MB
    assert time.monotonic() - start < 30  # ended by the kill, not by the payload's own 30 s


def test_memory_of_the_whole_tree(tmp_path: Path) -> None:
    """Three children of 60 MB each: none alone exceeds 150 MB, together they do; all of them are killed."""
    parent = ("import subprocess, sys; ps = [subprocess.Popen([sys.executable, '-c', sys.argv[1], '60', '30']) "
              "for _ in range(3)]; print(*[p.pid for p in ps], flush=True); [p.wait() for p in ps]")
    result = _run(tmp_path, [PY, "-c", parent, ALLOC], memory_mb=150)
    assert result.reason == "memory"  # only the sum over the tree gets there
    # the peak counts each process once: at most the parent and three children of 60 MB, each with its interpreter
    assert 150 < result.max_rss_mb <= 3 * 60 + 4 * (_interpreter_mb(tmp_path) + 10), result.max_rss_mb
    children = [int(pid) for pid in (tmp_path / "out").read_text().split()]
    assert len(children) == 3
    deadline = time.monotonic() + 30  # SIGKILLed when the monitor returns; gone once the kernel has freed them
    while alive := [pid for pid in children if _running(pid)]:
        assert time.monotonic() < deadline, f"children still running after SIGKILL: {alive}"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_walltime(tmp_path: Path) -> None:
    start = time.monotonic()
    result = _run(tmp_path, ["sleep", "30"], walltime_s=1.0)
    assert result.reason == "walltime"
    assert result.exit_code < 0
    # ended by the monitor after the walltime, not by the payload's own 30 s (how promptly: this machine's load)
    assert 1.0 <= result.wall_s < 30
    assert time.monotonic() - start < 30


def test_walltime_sigkills_a_payload_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)"
    result = _run(tmp_path, [PY, "-c", stubborn], walltime_s=0.5)
    assert result.reason == "walltime"
    assert result.exit_code == -9


def test_kill_event(tmp_path: Path) -> None:
    kill = threading.Event()
    threading.Timer(0.5, kill.set).start()
    result = _run(tmp_path, ["sleep", "30"], kill=kill)
    assert result.reason == "killed"


def test_stop_event(tmp_path: Path) -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    result = _run(tmp_path, ["sleep", "30"], stop=stop)
    assert result.reason == "stopped"


def test_cpu_time(tmp_path: Path) -> None:
    busy = "import time; end = time.process_time() + 0.6\nwhile time.process_time() < end: pass"
    result = _run(tmp_path, [PY, "-c", busy])
    assert result.exit_code == 0
    assert result.cpu_s >= 0.5


def test_program_missing(tmp_path: Path) -> None:
    result = _run(tmp_path, [str(tmp_path / "no-such-program")])
    assert result.exit_code == 127
    assert "cannot start" in (tmp_path / "err").read_text()


def test_leftover_processes_are_killed(tmp_path: Path) -> None:
    """A payload that leaves a background process behind in its group: it goes when the payload ends."""
    marker = tmp_path / "pid"
    leave = (f"import subprocess; p = subprocess.Popen(['sleep', '60']); open({str(marker)!r}, 'w').write(str(p.pid))")
    result = _run(tmp_path, [PY, "-c", leave])
    assert result.exit_code == 0
    pid = int(marker.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}/status").exists() else ""
        if "State:\tZ" in status:
            break
        time.sleep(0.1)
    status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}/status").exists() else ""
    assert not status or "State:\tZ" in status


def test_a_relative_program_is_found_in_the_payload_directory(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho from the work dir\n")
    script.chmod(0o755)
    result = _run(tmp_path, ["./run.sh"])
    assert (result.exit_code, result.reason) == (0, None)
    assert (tmp_path / "out").read_text() == "from the work dir\n"


def test_a_payload_dies_with_its_pilot(tmp_path: Path) -> None:
    """A pilot killed with SIGKILL (no chance to clean up) takes its payload with it: the slot is not left
    running a job the dispatcher will give to another pilot."""
    pilot_code = (
        "import sys, threading; from pathlib import Path; from juno_dcs.pilot.watch import Limits, run_payload; "
        "d = Path(sys.argv[1]); run_payload(['sleep', '120'], cwd=d, env={'PATH': '/usr/bin:/bin'}, "
        "limits=Limits(memory_limit_mb=1000, walltime_s=600), stop=threading.Event(), kill=threading.Event(), "
        "stdout=d / 'out', stderr=d / 'err')")
    pilot = subprocess.Popen([PY, "-c", pilot_code, str(tmp_path)])
    try:
        deadline = time.monotonic() + 30
        payload: list[psutil.Process] = []
        while not payload and time.monotonic() < deadline:
            payload = [c for c in psutil.Process(pilot.pid).children() if c.name() == "sleep"]
            time.sleep(0.1)
        assert payload, "the payload did not start"
        pilot.kill()
        pilot.wait(10)
        _, alive = psutil.wait_procs(payload, timeout=10)
        assert not alive, f"the payload outlived its pilot: {alive}"
    finally:
        pilot.kill()
