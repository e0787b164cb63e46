"""What a production is made of, as pure functions of its steering: DID names, job keys and JobSpecs.

    container          mc:mc.<campaign>.<name>
    step dataset       mc:mc.<campaign>.<name>.<step>          (and .log for the logs)
    job output         mc:mc.<campaign>.<name>.<step>.<job:06d>.root
    job log            mc:mc.<campaign>.<name>.<step>.<job:06d>.log.tgz
    dispatcher task    <name>.<step>, one per step
    job key            <step>.<job:06d>: unique in its task, so posting a job again creates nothing

Job numbers run from 1. A later step's job N reads the previous step's file of job N.
"""

from __future__ import annotations

import shlex

from juno_dcs.errors import ConfigError
from juno_dcs.payloads import grammar
from juno_dcs.prodsys.steering import SITE_LOCAL, Steering
from juno_dcs.topology import Topology
from juno_dcs.wms.models import JobSpec, LogSpec, OutputSpec, release_name, releases_words
from juno_rucio_policy.naming import BadName, mc_file_name, parse

SCOPE = "mc"


class PlanningError(ConfigError):
    """The steering cannot be planned against the topology (e.g. an unknown output RSE)."""


def container(steering: Steering) -> str:
    return f"mc.{steering.campaign}.{steering.name}"


def dataset(steering: Steering, step: str, *, log: bool = False) -> str:
    return f"{container(steering)}.{step}" + (".log" if log else "")


def output_file(steering: Steering, step: str, job: int) -> str:
    return mc_file_name(steering.campaign, steering.name, step, job, "root")


def log_file(steering: Steering, step: str, job: int) -> str:
    return mc_file_name(steering.campaign, steering.name, step, job, "log.tgz")


def task_name(steering: Steering, step: str) -> str:
    return f"{steering.name}.{step}"


def job_key(step: str, job: int) -> str:
    return f"{step}.{job:06d}"


def did(name: str) -> str:
    return f"{SCOPE}:{name}"


def previous_step(steering: Steering, step: str) -> str | None:
    index = steering.workflow.index(step)  # type: ignore[arg-type]
    return steering.workflow[index - 1] if index else None


def next_step(steering: Steering, step: str) -> str | None:
    index = steering.workflow.index(step)  # type: ignore[arg-type]
    return steering.workflow[index + 1] if index + 1 < len(steering.workflow) else None


def job_of_file(steering: Steering, step: str, name: str) -> int | None:
    """The job number of `name` when it is this production's `step` output (.root), else None."""
    try:
        parsed = parse(SCOPE, name, collection=False)
    except BadName:
        return None
    fields = parsed.fields
    if (fields.get("campaign"), fields.get("tag"), fields.get("step"), fields.get("ext")) != (
            steering.campaign, steering.name, step, "root"):
        return None
    return int(fields["job"])


def site_of_storage(steering: Steering, topology: Topology) -> str | None:
    """The site the jobs are pinned to: the output RSE's site, or None for site-local (the dispatcher's choice,
    outputs at the site's own DISK RSE)."""
    if steering.output_storage == SITE_LOCAL:
        return None
    rse = topology.rses.get(steering.output_storage)
    if rse is None:
        raise PlanningError(f"output_storage: {steering.output_storage!r} is not an RSE of the topology "
                            f"(known: {', '.join(sorted(topology.rses))}, or {SITE_LOCAL!r})")
    if rse.type != "DISK":
        raise PlanningError(f"output_storage: {steering.output_storage!r} is a {rse.type} RSE; jobs write to DISK")
    return rse.site


def check_release(steering: Steering, topology: Topology, site: str | None) -> str:
    """The release of `software` (its last path part), known to the topology and, for pinned jobs, at their site."""
    release = release_name(steering.software)
    where = topology.releases()
    if release not in where:
        raise PlanningError(f"software: release {release!r} is installed at no site of the topology; the releases "
                            f"are {releases_words(where)}")
    if site is not None and site not in where[release]:
        raise PlanningError(f"software: release {release!r} is not installed at {site}, where output_storage "
                            f"{steering.output_storage} pins the jobs; it is at {', '.join(where[release])}")
    return release


def payload_args(steering: Steering, step: str, job: int) -> list[str]:
    """The arguments of `juno-payload <step>` for job `job` (docs/payloads.md): the planner's, then the steering's
    `args` of the step."""
    out = output_file(steering, step, job)
    if step == "detsim":
        args = ["--evtmax", str(steering.events_per_job), "--seed", str(job), "--output", out]
    else:
        before = previous_step(steering, step) or "detsim"  # only detsim has no input
        args = ["--input", output_file(steering, before, job), "--output", out]
        if step == "elecsim":
            args += ["--seed", str(job)]
        if step == "cal":
            args += ["--tag", str(steering.conditions_tag), "--run", str(steering.run)]
    try:
        return args + shlex.split(steering.args.get(step, ""))  # type: ignore[call-overload]
    except ValueError as exc:
        raise PlanningError(f"args.{step}: {exc}") from exc


def check_commands(steering: Steering) -> None:
    """Parse job 1's command line of every step as the payload will (nothing runs); PlanningError names the step
    and the option."""
    for step in steering.workflow:
        try:
            grammar.check(step, payload_args(steering, step, 1))
        except grammar.GrammarError as exc:
            raise PlanningError(f"args.{step}: juno-payload {step}: {exc}") from exc


def job_spec(steering: Steering, step: str, job: int, site: str | None = None) -> JobSpec:
    """Job `job` of `step`: its payload, its input (the previous step's file), its output and log."""
    resources = steering.resources_of(step)
    before = previous_step(steering, step)
    inputs = [did(output_file(steering, before, job))] if before else []
    return JobSpec(
        key=job_key(step, job),
        transformation=step,  # type: ignore[arg-type]  # a Step is a Transformation
        args=payload_args(steering, step, job),
        env={"JUNO_SOFTWARE_VERSION": steering.software, "JUNO_PRODUCTION": steering.name},
        inputs=inputs,
        outputs=[OutputSpec(scope=SCOPE, name=output_file(steering, step, job), dataset=did(dataset(steering, step)))],
        log=LogSpec(scope=SCOPE, name=log_file(steering, step, job), dataset=did(dataset(steering, step, log=True))),
        cores=resources.cores,
        memory_mb=resources.memory_mb,
        walltime_s=resources.walltime,
        max_attempts=steering.max_attempts,
        priority=steering.priority,
        site=site,
        release=release_name(steering.software),
    )
