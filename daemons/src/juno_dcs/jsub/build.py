"""Sub-jobs -> dispatcher jobs: one generated bash script per sub-job, run by the `exec` transformation.

Names (in the user's scope `user.<account>`; Rucio generic names):

    task uid          <taskName>.<6 hex>                       unique per `jsub create`
    output dataset    jsub.<uid>  (or <outputSubDir>.<taskName>, or backend.outputDataset)
    log dataset       <output dataset>.log
    output file       <uid>.<jobid:05d>.<file>                 <file>: a step's output / outputUpload entry
    log file          <uid>.<jobid:05d>.log.tgz                the pilot's log tarball
    dispatcher task   jsub.<account>.<uid>                     job key: <jobid:05d>

A payload step is `juno-payload <step>` with the offline software's options (docs/payloads.md), made of the step's
keys and its additionalArgs; `check_payloads` parses the first sub-job's command lines before anything is stored
or sent. The script runs the steps in order in the job's work directory (where the pilot put the inputs, named by
their DID names), then renames each output to its DID name, which is what the pilot uploads.
"""

from __future__ import annotations

import base64
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from juno_dcs.jsub.errors import SplitError, TaskFileError
from juno_dcs.jsub.registry import PayloadCall
from juno_dcs.jsub.split import SubJob, substitute
from juno_dcs.jsub.taskfile import PAYLOAD_STEPS, STEP_KEYS, Step, TaskFile
from juno_dcs.payloads import grammar
from juno_dcs.payloads.grammar import GENERATORS
from juno_dcs.wms.models import JobSpec, LogSpec, OutputSpec, release_name
from juno_rucio_policy.naming import BadName, parse

MAX_EMBEDDED_BYTES = 256 * 1024


@dataclass(frozen=True)
class Naming:
    account: str
    uid: str
    output_dataset: str  # name in `scope`
    scope: str

    @property
    def log_dataset(self) -> str:
        return f"{self.output_dataset}.log"

    @property
    def dispatcher_task(self) -> str:
        return f"jsub.{self.account}.{self.uid}"

    def file(self, jobid: int, local: str) -> str:
        return f"{self.uid}.{jobid:05d}.{local}"

    def log(self, jobid: int) -> str:
        return f"{self.uid}.{jobid:05d}.log.tgz"


def new_uid(task_name: str) -> str:
    return f"{task_name}.{secrets.token_hex(3)}"


def naming_for(task: TaskFile, account: str, uid: str) -> Naming:
    scope = f"user.{account}"
    backend = task.backend
    if backend.output_dataset:
        ds_scope, _, name = backend.output_dataset.rpartition(":")
        if ds_scope and ds_scope != scope:
            raise TaskFileError(f"{task.path}: backend.outputDataset: {backend.output_dataset} is not in your "
                                f"scope {scope}")
        dataset = name
    elif backend.output_sub_dir:
        dataset = ".".join(p for p in backend.output_sub_dir.split("/") if p) + f".{task.task_name}"
    else:
        dataset = f"jsub.{uid}"
    for what, name in (("output dataset", dataset), ("log dataset", f"{dataset}.log")):
        try:
            parse(scope, name, collection=True)
        except BadName as exc:
            raise TaskFileError(f"{task.path}: backend: the {what} is not a valid name: {exc}") from exc
    return Naming(account, uid, dataset, scope)


@dataclass(frozen=True)
class Built:
    """One sub-job made concrete: its script, the files it uploads (local name -> DID name) and its JobSpec."""

    jobid: int
    script: str
    outputs: dict[str, str]
    spec: JobSpec
    payloads: list[PayloadCall]


def _q(value: str) -> str:
    return shlex.quote(value)


def _opt(step: Step, attr: str, default: str | None, variables: dict[str, str], where: str) -> str | None:
    value = getattr(step, attr)
    text = default if value is None else str(value)
    return None if text is None else substitute(text, variables, f"{where}.{attr}")


def _words(step: Step, attr: str, variables: dict[str, str], where: str) -> list[str]:
    """A step key holding one or more values (a list, or a string split at spaces)."""
    value = getattr(step, attr)
    items = value if isinstance(value, list) else [value]
    return [w for item in items for w in substitute(str(item), variables, f"{where}.{attr}").split()]


def _split(text: str, where: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise SplitError(f"{where}: {text!r}: {exc}") from exc


def _gun(step: Step, extra: list[str], variables: dict[str, str], where: str) -> list[str]:
    """detsim's `gun ...` made of the step's keys particles/momentums/positions (none: no gun here)."""
    keys = [k for k in ("particles", "momentums", "positions") if getattr(step, k) is not None]
    if not keys:
        return []
    generator = next((w for w in extra if not w.startswith("-")), None)
    if generator in GENERATORS:
        raise SplitError(f"{where}.{keys[0]}: the step's gun keys and the generator {generator!r} of "
                         "additionalArgs: give the generator one way")
    args = ["gun"]
    for key in keys:
        args += [f"--{key}", *_words(step, key, variables, where)]
    return args


def _payload_call(name: str, step: Step, variables: dict[str, str], previous: str | None,
                  has_inputs: bool, where: str) -> tuple[str, list[str], PayloadCall]:
    """The `juno-payload` command line of a payload step, the files it writes, and its arguments to check."""
    kind = step.payload or PAYLOAD_STEPS[name]
    output = _opt(step, "output", f"{name}.root", variables, where) or f"{name}.root"
    user_output = _opt(step, "user_output", None, variables, where)
    written = [output] + ([user_output] if user_output else [])
    if step.full_args is not None:
        text = substitute(step.full_args, variables, f"{where}.fullArgs")
        return (f"juno-payload {kind} {text}", written,
                PayloadCall(where=where, step=kind, argv=_split(text, f"{where}.fullArgs")))
    extra_text = substitute(step.additional_args, variables, f"{where}.additionalArgs")
    extra = _split(extra_text, f"{where}.additionalArgs")
    args: list[str] = []
    default_evtmax = "$(evtmax)" if kind == "detsim" and "evtmax" in variables else None
    evtmax = _opt(step, "evtmax", default_evtmax, variables, where)
    if evtmax is not None:
        args += ["--evtmax", evtmax]
    if kind != "detsim":
        default_input = previous if previous is not None else ("$(input)" if has_inputs else None)
        source = _opt(step, "input", default_input, variables, where)
        if source is None:
            raise SplitError(f"{where}.input: {kind} needs an input: give `input`, put a step before it, "
                             "or split by dataset")
        args += ["--input", source]
    args += ["--output", output]
    if kind in ("detsim", "elecsim"):
        args += ["--seed", _opt(step, "seed", "$(seed)", variables, where) or ""]
        if user_output:
            args += ["--user-output", user_output]
    for key in ("rate", "tag", "run"):
        value = _opt(step, key, None, variables, where) if kind in STEP_KEYS[key] else None
        if value is not None:
            args += [f"--{key}", value]
    gun = _gun(step, extra, variables, where) if kind == "detsim" else []
    line = " ".join(["juno-payload", kind, *(_q(a) for a in args + gun)])
    return (f"{line} {extra_text}" if extra_text else line), written, PayloadCall(
        where=where, step=kind, argv=[*args, *gun, *extra])


def check_payloads(calls: list[PayloadCall], path: str) -> None:
    """Parse each payload step's command line as the payload will (nothing runs): TaskFileError names the task
    file, the step and the option."""
    for call in calls:
        try:
            grammar.check(call.step, call.argv)
        except grammar.GrammarError as exc:
            raise TaskFileError(f"{path}: {call.where}: juno-payload {call.step}: {exc}") from exc


def _embed(path: Path, where: str) -> str:
    data = path.read_bytes()
    if len(data) > MAX_EMBEDDED_BYTES:
        raise TaskFileError(f"{where}.exe: {path} is {len(data)} bytes; at most {MAX_EMBEDDED_BYTES} are "
                            "embedded in the job (put bigger files in Rucio and read them as inputs)")
    encoded = base64.b64encode(data).decode()
    name = _q(path.name)
    return f"printf '%s' {_q(encoded)} | base64 -d > {name}\nchmod +x {name}\n"


def _exe_line(step: Step, variables: dict[str, str], base: Path, where: str) -> str:
    program = substitute(step.program, variables, f"{where}.exe")
    args = substitute(step.program_args, variables, f"{where}.args")
    local = base / program
    prefix = ""
    if not PurePosixPath(program).is_absolute() and local.is_file():
        prefix = _embed(local, where)
        program = f"./{local.name}"
    return f"{prefix}{_q(program)}{' ' + args if args else ''}"


def build(task: TaskFile, sub: SubJob, naming: Naming) -> Built:
    """The script and JobSpec of one sub-job."""
    variables = dict(sub.vars)
    lines = ["set -euo pipefail", f"echo \"jsub: task {naming.uid} sub-job {sub.jobid}\""]
    uploads: list[str] = []
    calls: list[PayloadCall] = []
    previous: str | None = None
    for i, (name, step) in enumerate(task.steps, 1):
        where = f"workflow.{name}"
        lines.append(f"echo \"jsub: step {i}/{len(task.steps)} {name} ($(date -u +%FT%TZ))\"")
        if step.type == "payload":
            line, written, call = _payload_call(name, step, variables, previous, bool(sub.inputs), where)
            previous = written[0]
            calls.append(call)
            if step.upload:
                uploads += written
        elif step.type == "exe":
            line = _exe_line(step, variables, task.directory, where)
        else:
            line = substitute(step.command, variables, f"{where}.cmd")
        lines.append(line)
        uploads += [substitute(f, variables, f"{where}.outputUpload") for f in step.output_upload]
    outputs: dict[str, str] = {}
    for local in uploads:
        if "/" in local or local in outputs:
            if local in outputs:
                raise SplitError(f"workflow: the output {local!r} is uploaded twice")
            raise SplitError(f"workflow: output {local!r}: outputs are files of the job's directory (no '/')")
        did = naming.file(sub.jobid, local)
        try:
            parse(naming.scope, did, collection=False)
        except BadName as exc:
            raise SplitError(f"workflow: output {local!r}: {exc}") from exc
        outputs[local] = did
    lines.append("echo \"jsub: steps done, outputs:\"")
    lines += [f"mv -f -- {_q(local)} {_q(did)} && ls -l -- {_q(did)}" for local, did in outputs.items()]
    script = "\n".join(lines) + "\n"
    env = {k: substitute(v, variables, f"env.{k}") for k, v in task.env.items()}
    env.update({"JSUB_TASK": naming.uid, "JSUB_JOBID": str(sub.jobid)})
    if task.soft_version:
        env["JUNO_SOFTWARE_VERSION"] = task.soft_version
    dataset = f"{naming.scope}:{naming.output_dataset}"
    backend = task.backend
    spec = JobSpec(
        key=f"{sub.jobid:05d}",
        transformation="exec",
        args=["bash", "-c", script, f"jsub-{sub.jobid:05d}"],
        env=env,
        inputs=sub.inputs,
        outputs=[OutputSpec(scope=naming.scope, name=did, dataset=dataset) for did in outputs.values()],
        log=LogSpec(scope=naming.scope, name=naming.log(sub.jobid), dataset=f"{naming.scope}:{naming.log_dataset}"),
        cores=backend.cores,
        memory_mb=backend.memory_mb,
        walltime_s=backend.walltime_s,
        max_attempts=backend.max_attempts,
        priority=backend.priority,
        site=backend.pinned_site,
        release=release_name(task.soft_version) if task.soft_version else None,
    )
    return Built(sub.jobid, script, outputs, spec, calls)
