"""What the jsub commands do, as plain functions over typed records (the CLI only parses and prints).

The dispatcher client and the Rucio client are parameters, made once by the CLI.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from juno_dcs.jsub import local
from juno_dcs.jsub.build import build, check_payloads, naming_for, new_uid
from juno_dcs.jsub.errors import RegistryError, SplitError, TaskFileError
from juno_dcs.jsub.registry import Registry, SubJobRecord, TaskRecord, now
from juno_dcs.jsub.rucio import create_dataset, download
from juno_dcs.jsub.split import ListFiles, split
from juno_dcs.jsub.taskfile import TaskFile, load_task
from juno_dcs.wms.client import WmsClient, WmsError
from juno_dcs.wms.failures import ErrorGroup, group
from juno_dcs.wms.models import release_name, releases_words

CHUNK = 500  # jobs per dispatcher request
PAGE = 1000  # jobs per listing page
Rucio = Any
Releases = Callable[[], dict[str, list[str]] | None]  # release -> the sites that have it; None: no answer


def create(registry: Registry, task_path: Path, account: str, url: str | None,
           list_files: ListFiles | None = None, work_root: Path | None = None,
           releases: Releases | None = None) -> TaskRecord:
    """Validate the task file, split it, build every sub-job and store the task; nothing is sent yet.
    `releases`: the dispatcher's releases and their sites, to refuse a softVersion no site has (None: not asked)."""
    task = load_task(task_path)
    release_warnings = check_release(task, str(task_path), releases)
    uid = new_uid(task.task_name)
    naming = naming_for(task, account, uid)
    builtins = {"taskname": task.task_name, "taskid": uid, "account": account, "scope": naming.scope,
                "dataset": naming.output_dataset}
    subjobs = []
    try:
        result = split(task, builtins, list_files)
        for sub in result.subjobs:
            built = build(task, sub, naming)
            subjobs.append(SubJobRecord(jobid=sub.jobid, vars=sub.vars, inputs=sub.inputs, outputs=built.outputs,
                                        script=built.script, spec=built.spec, payloads=built.payloads))
    except SplitError as exc:
        raise SplitError(f"{task_path}: {exc}") from exc
    if subjobs:
        check_payloads(subjobs[0].payloads, str(task_path))  # before anything is stored
    backend = task.backend
    work_dir = None
    if backend.kind == "local":
        root = Path(backend.work_dir) if backend.work_dir else (work_root or registry.root / "work")
        if not root.is_absolute():
            root = task.directory / root
        work_dir = str(root / (backend.work_subdir or "") / uid)
    task_id = registry.next_id()
    record = TaskRecord(
        id=task_id, uid=uid, name=task.task_name, created=now(), task_file=str(task_path.resolve()),
        task_text=task_path.read_text(), backend=backend.kind, url=backend.url or url, account=account,
        scope=naming.scope, output_dataset=naming.output_dataset, log_dataset=naming.log_dataset,
        work_dir=work_dir, max_submit=backend.max_submit, dispatcher_task=naming.dispatcher_task,
        priority=backend.priority,
        warnings=[*release_warnings, *result.warnings, *task.ignored], subjobs=subjobs)
    registry.save(record)
    return record


def check_release(task: TaskFile, where: str, releases: Releases | None) -> list[str]:
    """Refuse a task whose softVersion's release no site has (the dispatcher refuses its jobs too); a warning
    when the dispatcher could not say. Local tasks run here: their release is not checked."""
    if not task.soft_version or task.backend.kind == "local" or releases is None:
        return []
    release = release_name(task.soft_version)
    known = releases()
    if known is None:
        return [f"softVersion: release {release} not checked (the dispatcher did not answer); it is at submit"]
    if release not in known:
        raise TaskFileError(f"{where}: softVersion: release {release!r} is installed at no site; the releases are "
                            f"{releases_words(known)}")
    return []


def _chunks(items: Sequence[SubJobRecord], size: int) -> Iterator[list[SubJobRecord]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def submit_dispatcher(registry: Registry, record: TaskRecord, wms: WmsClient, rucio: Rucio | None) -> TaskRecord:
    """Create the output and log datasets, then send every sub-job. Safe to repeat after an interruption:
    a task name that exists is looked up, and jobs whose key exists are not created again. The first sub-job's
    payload command lines are checked again first (the payloads may be newer than the stored task)."""
    if record.subjobs:
        check_payloads(record.subjobs[0].payloads, record.task_file)
    if not record.datasets_created:
        if rucio is None:
            raise RegistryError("submitting to the dispatcher creates the output datasets in Rucio: "
                                "set RUCIO_CONFIG or give --rucio-config")
        create_dataset(rucio, record.scope, record.output_dataset)
        create_dataset(rucio, record.scope, record.log_dataset)
        record.datasets_created = True
        registry.save(record)
    pending = [s for s in record.subjobs if s.job_id is None]
    for chunk in _chunks(pending, CHUNK):
        specs = [s.spec for s in chunk]
        if record.task_id is None:
            try:
                record.task_id, ids = wms.submit_task(record.dispatcher_task, "user", record.account, specs,
                                                      priority=record.priority)
            except WmsError as exc:
                if exc.status != 409:
                    raise
                record.task_id = _task_by_name(wms, record.dispatcher_task)
                ids = wms.add_jobs(record.task_id, specs)
        else:
            ids = wms.add_jobs(record.task_id, specs)
        for sub, job_id in zip(chunk, ids, strict=True):
            sub.job_id = job_id
        registry.save(record)
    record.submitted = True
    registry.save(record)
    return record


def _task_by_name(wms: WmsClient, name: str) -> int:
    for task in wms.tasks():
        if task.get("name") == name:
            return int(task["task_id"])
    raise RegistryError(f"the dispatcher says task {name} exists but does not list it")


def submit_local(registry: Registry, record: TaskRecord, wait: bool,
                 stage_in: local.StageIn | None) -> dict[int, str] | int:
    """Run the sub-jobs locally: in this process (`wait`, their final states) or detached (the runner's pid)."""
    if record.subjobs:
        check_payloads(record.subjobs[0].payloads, record.task_file)
    Path(record.work_dir or ".").mkdir(parents=True, exist_ok=True)
    record.submitted = True
    registry.save(record)
    if wait:
        return local.run(record, None, stage_in)
    return local.spawn(registry.root, record)


def dispatcher_jobs(wms: WmsClient, task_id: int, state: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        filters: dict[str, Any] = {"task_id": task_id, "limit": PAGE, "offset": len(out)}
        if state:
            filters["state"] = state
        page = wms.jobs(**filters)
        out += page
        if len(page) < PAGE:
            return out


@dataclass
class Status:
    by_state: dict[str, int]
    subjobs: list[dict[str, Any]] = field(default_factory=list)  # {jobid, job_id, state, attempt, site, error}
    errors: list[ErrorGroup] = field(default_factory=list)  # the failed sub-jobs by reason, most frequent first


def status(record: TaskRecord, wms: WmsClient | None, subjobs: bool = True) -> Status:
    """The task's sub-jobs by state and its failures by reason; with `subjobs`, every sub-job's row too. Without,
    a dispatcher task is read as its counts by state and its failed jobs only (a 10,000-job task: two calls, not
    every job page by page)."""
    if not record.submitted and record.task_id is None:
        return Status({"created": len(record.subjobs)},
                      [{"jobid": s.jobid, "state": "created"} for s in record.subjobs])
    if record.backend == "local":
        rows = []
        for sub in record.subjobs:
            state = local.read_state(record, sub.jobid)
            rows.append({"jobid": sub.jobid, "state": local.current_state(record, sub.jobid),
                         "attempt": state.get("attempt", 0), "exit_code": state.get("exit_code"),
                         "error": state.get("error")})
        failed = [{"jobid": r["jobid"], "error_class": str(r["error"] or "").partition(":")[0],
                   "error_diag": str(r["error"] or "").partition(":")[2].strip()}
                  for r in rows if r["state"] == "failed"]
        return Status(_count(r["state"] for r in rows), rows, _groups(failed))
    if wms is None or record.task_id is None:
        raise RegistryError(f"task {record.id} has no dispatcher task yet: run `jsub submit {record.id}`")
    by_job = {s.job_id: s.jobid for s in record.subjobs}
    if not subjobs:
        return _counted(record, wms, record.task_id, by_job)
    rows = []
    failed = []
    for job in dispatcher_jobs(wms, record.task_id):
        rows.append({"jobid": by_job.get(job["job_id"]), "job_id": job["job_id"], "state": job.get("state"),
                     "attempt": job.get("attempt"), "site": job.get("site"),
                     "error": _error_text(job)})
        if job.get("state") == "failed":
            failed.append({"jobid": by_job.get(job["job_id"]), "job_id": job["job_id"],
                           "error_class": job.get("error_class"), "error_diag": job.get("error_diag")})
    rows.sort(key=lambda r: r["jobid"] or 0)
    unsent = [s.jobid for s in record.subjobs if s.job_id is None]
    rows += [{"jobid": j, "state": "unsent"} for j in unsent]
    return Status(_count(r["state"] for r in rows), rows, _groups(failed))


def _counted(record: TaskRecord, wms: WmsClient, task_id: int, by_job: dict[int | None, int]) -> Status:
    by_state = {str(k): int(v) for k, v in (wms.task(task_id).get("jobs_by_state") or {}).items() if int(v)}
    unsent = sum(1 for s in record.subjobs if s.job_id is None)
    if unsent:
        by_state["unsent"] = by_state.get("unsent", 0) + unsent
    failed = [{"jobid": by_job.get(job["job_id"]), "job_id": job["job_id"], "error_class": job.get("error_class"),
               "error_diag": job.get("error_diag")} for job in dispatcher_jobs(wms, task_id, state="failed")]
    return Status(dict(sorted(by_state.items())), [], _groups(failed))


def _groups(failed: list[dict[str, Any]]) -> list[ErrorGroup]:
    """The failed sub-jobs by reason; each group's example is its lowest sub-job."""
    return group(sorted(failed, key=lambda f: f.get("jobid") or 0))


def _error_text(job: dict[str, Any]) -> str | None:
    code = job.get("error_code")
    if not code:
        return None
    return f"{code} {job.get('error_class') or ''}: {job.get('error_diag') or ''}".strip()


def _count(states: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for state in states:
        out[str(state)] = out.get(str(state), 0) + 1
    return dict(sorted(out.items()))


def reschedule(registry: Registry, record: TaskRecord, wms: WmsClient | None, jobids: Sequence[int] | None,
               wait: bool = True, stage_in: local.StageIn | None = None) -> list[int]:
    """Run again the failed sub-jobs (of `jobids`, or all): a dispatcher retry each, or a local re-run.
    The sub-jobs rescheduled."""
    if record.backend == "local":
        failed = [s.jobid for s in record.subjobs if local.current_state(record, s.jobid) == "failed"
                  and (not jobids or s.jobid in jobids)]
        if failed:
            if wait:
                local.run(record, failed, stage_in)
            else:
                local.spawn(registry.root, record, failed)
        return failed
    if wms is None or record.task_id is None:
        raise RegistryError(f"task {record.id} was not submitted: run `jsub submit {record.id}`")
    by_job = {s.job_id: s.jobid for s in record.subjobs}
    done = []
    for job in dispatcher_jobs(wms, record.task_id, state="failed"):
        jobid = by_job.get(job["job_id"])
        if jobid is None or (jobids and jobid not in jobids):
            continue
        wms.retry_job(int(job["job_id"]))
        done.append(jobid)
    return sorted(done)


def _extract(tgz: Path, dest: Path) -> list[Path]:
    """The regular files of the tarball, written flat into `dest` (no paths from the archive are trusted)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            source = tar.extractfile(member) if member.isfile() else None
            if source is None:
                continue
            target = dest / Path(member.name).name
            target.write_bytes(source.read())
            out.append(target)
    return out


def getlog(record: TaskRecord, jobid: int, dest: Path, wms: WmsClient | None,
           rucio_factory: Callable[[], Rucio]) -> list[Path]:
    """The sub-job's log files, extracted under dest/<jobid>: from the work directory (local) or the log
    tarball the pilot uploaded to Rucio (the DID in the job's log spec)."""
    sub = record.subjob(jobid)
    out = dest / f"{record.uid}.{jobid:05d}"
    if record.backend == "local":
        directory = local.subjob_dir(record, jobid)
        tgz = directory / (sub.spec.log.name if sub.spec.log else "log.tgz")
        if not tgz.exists():
            raise RegistryError(f"sub-job {jobid} has no log yet in {directory} (state "
                                f"{local.current_state(record, jobid)})")
        return _extract(tgz, out)
    if wms is None or sub.job_id is None:
        raise RegistryError(f"sub-job {jobid} of task {record.id} was not submitted")
    job = wms.job(sub.job_id)
    log = job.get("log") or (sub.spec.log.model_dump() if sub.spec.log else None)
    if not log:
        raise RegistryError(f"job {sub.job_id} has no log spec")
    did = f"{log['scope']}:{log['name']}"
    try:
        paths = download(rucio_factory(), [did], out)
    except Exception as exc:
        raise RegistryError(f"sub-job {jobid} (job {sub.job_id}, {job.get('state')}): its log {did} "
                            f"cannot be fetched from Rucio: {exc}") from exc
    files = [p for p in paths if p.name.endswith((".tgz", ".tar.gz"))]
    return [q for p in files for q in _extract(p, out)] + [p for p in paths if p not in files]


def remove(registry: Registry, record: TaskRecord, wms: WmsClient | None) -> str:
    """Kill the task's jobs and forget the task."""
    what = "nothing was running"
    if record.backend == "local":
        what = f"{local.kill(record)} sub-job(s) cancelled"
    elif record.task_id is not None:
        if wms is None:
            raise RegistryError("removing a submitted task kills its jobs: give --dispatcher or JUNO_WMS_URL")
        wms.kill_task(record.task_id)
        what = f"dispatcher task {record.task_id} killed"
    registry.delete(record.id)
    return what
