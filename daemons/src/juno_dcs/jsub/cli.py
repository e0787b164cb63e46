"""`jsub`: JSUB-style user tasks from YAML task files (docs/jsub.md).

    jsub [--registry DIR] [--dispatcher URL] [--rucio-config FILE] COMMAND
        create TASKFILE [--account A] [--submit]      validate, split, build and store a task
        submit TASK [--detach]                        send it (dispatcher) or run it (local)
        status TASK [--jobs] [--json]                 sub-jobs by state
        reschedule TASK [--subjob N]...               run the failed sub-jobs again
        getlog TASK SUBJOB [--dest DIR] [--print]     a sub-job's log
        show TASK [--subjob N]                        a sub-job's variables, script and job spec
        ls                                            the tasks of the registry
        remove TASK                                   kill its jobs and forget it
        dataset query|create|delete|register          datasets in Rucio
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from juno_dcs.clikit import EXIT_CODES_EPILOG, KitGroup, use_rucio_config


@dataclass(frozen=True)
class Context:
    registry: Path
    dispatcher: str | None
    rucio_config: Path | None


pass_ctx = click.make_pass_decorator(Context)


@click.group(cls=KitGroup, name="jsub", epilog=EXIT_CODES_EPILOG)
@click.option("--registry", type=click.Path(file_okay=False, path_type=Path), envvar="JSUB_HOME", default=None,
              help="The local task registry (default $JSUB_HOME, else ~/.jsub).")
@click.option("--dispatcher", envvar="JUNO_WMS_URL", default=None,
              help="The dispatcher's URL (default $JUNO_WMS_URL, else the task file's backend.url).")
@click.option("--rucio-config", type=click.Path(dir_okay=False, path_type=Path), envvar="RUCIO_CONFIG",
              default=None, help="Your Rucio client configuration (default $RUCIO_CONFIG).")
@click.pass_context
def main(ctx: click.Context, registry: Path | None, dispatcher: str | None, rucio_config: Path | None) -> None:
    """JSUB-style user analysis tasks: thousands of jobs from one YAML task file."""
    from juno_dcs.jsub.registry import default_registry

    if rucio_config is not None and str(rucio_config) != os.environ.get("RUCIO_CONFIG"):
        use_rucio_config(rucio_config)  # given on the command line: it must exist
    ctx.obj = Context(registry or default_registry(), dispatcher, rucio_config)


def _registry(ctx: Context) -> Any:
    from juno_dcs.jsub.registry import Registry

    return Registry(ctx.registry)


def _wms(ctx: Context, record: Any) -> Any:
    from juno_dcs.jsub.errors import RegistryError
    from juno_dcs.wms.client import WmsClient
    from juno_dcs.wms.credentials import user_token

    if record.backend == "local":
        return None
    url = ctx.dispatcher or record.url
    if not url:
        raise RegistryError("no dispatcher URL: give --dispatcher, set JUNO_WMS_URL or backend.url")
    return WmsClient(url, token=user_token())  # the user's token (BEARER_TOKEN_FILE of `juno-dcs env --account`)


def _rucio() -> Any:
    from juno_dcs.jsub.rucio import client

    return client()


@main.command()
@click.argument("task_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--account", default=None, help="Your Rucio account (default: the one of your Rucio config).")
@click.option("--submit", "then_submit", is_flag=True, help="Submit it right away.")
@pass_ctx
def create(ctx: Context, task_file: Path, account: str | None, then_submit: bool) -> None:
    """Validate TASK_FILE, split it into sub-jobs and store the task (prints its id)."""
    from juno_dcs.jsub.errors import TaskFileError
    from juno_dcs.jsub.rucio import config_account, file_dids
    from juno_dcs.jsub.taskfile import load_task
    from juno_dcs.jsub.tasks import create as do_create

    task = load_task(task_file)
    account = account or task.account or config_account(ctx.rucio_config)
    if not account:
        raise TaskFileError(f"{task_file}: account: not given and no Rucio config names one "
                            "(give --account, `account:` or RUCIO_CONFIG)")
    record = do_create(_registry(ctx), task_file, account, ctx.dispatcher,
                       list_files=lambda did: file_dids(_rucio(), did),
                       releases=lambda: _releases(ctx.dispatcher or task.backend.url))
    for warning in record.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"task {record.id} created: {record.uid}, {len(record.subjobs)} sub-job(s), backend "
               f"{record.backend}, outputs {record.scope}:{record.output_dataset}")
    if then_submit:
        _submit(ctx, record, detach=False)


def _releases(url: str | None) -> dict[str, list[str]] | None:
    """The releases the dispatcher's queues have, each with its sites; None when it cannot be asked."""
    from juno_dcs.errors import JunoDcsError
    from juno_dcs.wms.client import WmsClient
    from juno_dcs.wms.credentials import user_token

    if not url:
        return None
    try:
        with WmsClient(url, token=user_token()) as wms:
            queues = wms.queues()
    except JunoDcsError:
        return None
    out: dict[str, list[str]] = {}
    for queue in queues:
        for release in queue.get("releases") or []:
            out.setdefault(str(release), []).append(str(queue["queue"]))
    return out


def _submit(ctx: Context, record: Any, detach: bool) -> None:
    from juno_dcs.jsub.rucio import stage_in_from_config
    from juno_dcs.jsub.tasks import submit_dispatcher, submit_local

    registry = _registry(ctx)
    if record.backend == "local":
        result = submit_local(registry, record, not detach, stage_in_from_config())
        if isinstance(result, int):
            click.echo(f"task {record.id}: {len(record.subjobs)} sub-job(s) running in {record.work_dir} "
                       f"(runner pid {result})")
        else:
            click.echo(f"task {record.id}: {_counts(result.values())} in {record.work_dir}")
        return
    rucio = None if record.datasets_created else _rucio()
    record = submit_dispatcher(registry, record, _wms(ctx, record), rucio)
    click.echo(f"task {record.id} submitted: dispatcher task {record.task_id} ({record.dispatcher_task}), "
               f"{len(record.subjobs)} job(s)")


def _counts(states: Any) -> str:
    out: dict[str, int] = {}
    for s in states:
        out[s] = out.get(s, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(out.items()))


@main.command()
@click.argument("task_id", type=int)
@click.option("--detach", is_flag=True, help="Local backend: run the sub-jobs in the background.")
@pass_ctx
def submit(ctx: Context, task_id: int, detach: bool) -> None:
    """Send task TASK_ID to the dispatcher (idempotent), or run it locally."""
    _submit(ctx, _registry(ctx).load(task_id), detach)


@main.command()
@click.argument("task_id", type=int)
@click.option("--jobs", "show_jobs", is_flag=True, help="One line per sub-job.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@pass_ctx
def status(ctx: Context, task_id: int, show_jobs: bool, as_json: bool) -> None:
    """Sub-jobs of TASK_ID by state."""
    from juno_dcs.jsub.tasks import status as do_status

    record = _registry(ctx).load(task_id)
    result = do_status(record, _wms(ctx, record) if record.task_id is not None else None, subjobs=show_jobs)
    if as_json:
        click.echo(json.dumps({"task": record.id, "uid": record.uid, "by_state": result.by_state,
                               "errors": [g.as_json() for g in result.errors],
                               "subjobs": result.subjobs if show_jobs else None}, indent=1))
        return
    click.echo(f"task {record.id} {record.uid} ({record.backend}): "
               + ", ".join(f"{s} {n}" for s, n in result.by_state.items()))
    for g in result.errors:
        example = g.example.get("jobid")
        job = f" (job {g.example['job_id']})" if g.example.get("job_id") is not None else ""
        click.echo(f"  failed {g.count:>5} x {g.error_class}: {g.message} [e.g. sub-job {example}{job}]")
    if show_jobs:
        for row in result.subjobs:
            extra = " ".join(f"{k}={row[k]}" for k in ("job_id", "attempt", "site", "exit_code", "error")
                             if row.get(k) not in (None, ""))
            click.echo(f"  {row['jobid']:>6} {row['state']:<10} {extra}")


@main.command()
@click.argument("task_id", type=int)
@click.option("--subjob", "subjobs", type=int, multiple=True, help="Only this sub-job (repeatable).")
@click.option("--detach", is_flag=True, help="Local backend: re-run in the background.")
@pass_ctx
def reschedule(ctx: Context, task_id: int, subjobs: tuple[int, ...], detach: bool) -> None:
    """Run the failed sub-jobs of TASK_ID again (only the failed ones)."""
    from juno_dcs.jsub.rucio import stage_in_from_config
    from juno_dcs.jsub.tasks import reschedule as do_reschedule

    record = _registry(ctx).load(task_id)
    done = do_reschedule(_registry(ctx), record, _wms(ctx, record), list(subjobs) or None, not detach,
                         stage_in_from_config())
    click.echo(f"task {record.id}: {len(done)} failed sub-job(s) rescheduled"
               + (f": {', '.join(map(str, done))}" if done else ""))


@main.command()
@click.argument("task_id", type=int)
@click.argument("subjob", type=int)
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              help="Where to put the log (a directory <uid>.<subjob> is made in it).")
@click.option("--print", "print_it", is_flag=True, help="Also print the log files.")
@pass_ctx
def getlog(ctx: Context, task_id: int, subjob: int, dest: Path, print_it: bool) -> None:
    """Fetch the log of sub-job SUBJOB of TASK_ID (from Rucio, or the local work directory)."""
    from juno_dcs.jsub.tasks import getlog as do_getlog

    record = _registry(ctx).load(task_id)
    paths = do_getlog(record, subjob, dest, _wms(ctx, record), _rucio)
    for path in paths:
        click.echo(str(path))
        if print_it:
            click.echo(path.read_text(errors="replace"))


@main.command()
@click.argument("task_id", type=int)
@click.option("--subjob", type=int, default=1, show_default=True)
@pass_ctx
def show(ctx: Context, task_id: int, subjob: int) -> None:
    """Show one sub-job of TASK_ID: its variables, script and job spec."""
    record = _registry(ctx).load(task_id)
    sub = record.subjob(subjob)
    click.echo(json.dumps({"jobid": sub.jobid, "vars": sub.vars, "inputs": sub.inputs, "outputs": sub.outputs,
                           "job_id": sub.job_id}, indent=1))
    click.echo("--- script")
    click.echo(sub.script, nl=False)
    click.echo("--- job spec")
    click.echo(json.dumps(sub.spec.model_dump(mode="json", exclude={"args"}), indent=1))


@main.command("ls")
@pass_ctx
def ls_(ctx: Context) -> None:
    """The tasks of the registry."""
    for record in _registry(ctx).all():
        state = ("submitted" if record.submitted else "created")
        where = f"dispatcher task {record.task_id}" if record.task_id is not None else record.work_dir or ""
        click.echo(f"{record.id:>4} {record.uid:<32} {record.backend:<10} {len(record.subjobs):>6} sub-jobs "
                   f"{state:<9} {record.created} {where}")


@main.command()
@click.argument("task_id", type=int)
@pass_ctx
def remove(ctx: Context, task_id: int) -> None:
    """Kill the jobs of TASK_ID and remove it from the registry (outputs in Rucio stay)."""
    from juno_dcs.jsub.tasks import remove as do_remove

    record = _registry(ctx).load(task_id)
    what = do_remove(_registry(ctx), record, _wms(ctx, record) if record.task_id is not None else None)
    click.echo(f"task {task_id} removed: {what}")


@main.group()
def dataset() -> None:
    """Datasets in Rucio, in your scope user.<account>."""


@dataset.command("query")
@click.argument("did")
@pass_ctx
def ds_query(ctx: Context, did: str) -> None:
    """List the files of dataset DID (scope:name)."""
    from juno_dcs.jsub.rucio import list_files

    files = list_files(_rucio(), did)
    for f in files:
        click.echo(f"{f['scope']}:{f['name']}  {f.get('bytes')}  {f.get('adler32')}")
    click.echo(f"{len(files)} file(s), {sum(int(f.get('bytes') or 0) for f in files)} bytes")


@dataset.command("create")
@click.argument("name")
@click.option("--rse", default=None, help="Also keep one copy there (a replication rule).")
@click.option("--lifetime", type=int, default=None, help="Seconds until Rucio erases it.")
@pass_ctx
def ds_create(ctx: Context, name: str, rse: str | None, lifetime: int | None) -> None:
    """Create dataset NAME (or user.<account>:NAME) in your scope."""
    from juno_dcs.jsub.errors import DataError
    from juno_dcs.jsub.rucio import create_dataset, split_did
    from juno_rucio_policy.naming import BadName, parse

    rucio = _rucio()
    scope, dsname = split_did(name, f"user.{rucio.account}")
    try:
        parse(scope, dsname, collection=True)
    except BadName as exc:
        raise DataError(str(exc)) from exc
    created = create_dataset(rucio, scope, dsname, rse, lifetime)
    click.echo(f"{scope}:{dsname} {'created' if created else 'exists already'}")


@dataset.command("delete")
@click.argument("did")
@pass_ctx
def ds_delete(ctx: Context, did: str) -> None:
    """Erase dataset DID: your rules on it go, and Rucio's undertaker erases it."""
    from juno_dcs.jsub.rucio import delete_dataset

    for line in delete_dataset(_rucio(), did):
        click.echo(line)


@dataset.command("register")
@click.argument("dataset_did")
@click.argument("files", nargs=-1, required=True)
@pass_ctx
def ds_register(ctx: Context, dataset_did: str, files: tuple[str, ...]) -> None:
    """Attach existing FILES (scope:name; name alone = the dataset's scope) to DATASET_DID."""
    from juno_dcs.jsub.rucio import attach, split_did

    rucio = _rucio()
    scope, _ = split_did(dataset_did, f"user.{rucio.account}")
    target = dataset_did if ":" in dataset_did else f"{scope}:{dataset_did}"
    files_full = [f if ":" in f else f"{scope}:{f}" for f in files]
    n = attach(rucio, target, files_full)
    click.echo(f"{n} file(s) attached to {target} ({len(files) - n} already in it)")
