"""Splitters: a task file's splitter -> its sub-jobs (each a dict of job variables and a list of inputs).

splitByJobvars: variables of one group are zipped (they must have the same length; an unbounded range or a
composite string takes the group's length), the groups are crossed (the first group varies slowest), and the
variables without a group are zipped with that product. splitByEvent: totalEvents / evtMaxPerJob / njobs ->
$(evtmax), $(skipevt), $(seed). splitByDataset: the files of a Rucio dataset, `filesPerJob` per sub-job; they
become the sub-job's inputs.

$(name) in a string is replaced by the sub-job's variable `name`; `$$(` writes a literal `$(`; an unknown
name is an error that names the field and the variables there are. Other `$(` (the shell's `$(( 1 + 2 ))`,
`$(ls -l)`) are left as they are.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from juno_dcs.jsub.errors import SplitError
from juno_dcs.jsub.taskfile import (
    CompositeStringVar,
    EnumerateVar,
    Jobvar,
    LinesInFileVar,
    RangeVar,
    SplitByDataset,
    SplitByEvent,
    SplitByJobvars,
    TaskFile,
)

_VAR = re.compile(r"\$\$\(|\$\(([A-Za-z_][A-Za-z0-9_.]*)\)")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
DEFAULT_GROUP = ""

ListFiles = Callable[[str], Sequence[str]]  # "scope:name" of a dataset -> its files' "scope:name", in order


@dataclass(frozen=True)
class SubJob:
    """One sub-job before it is built into a job: its id (1-based), variables and input DIDs."""

    jobid: int
    vars: dict[str, str]
    inputs: list[str] = field(default_factory=list)


def substitute(text: str, variables: dict[str, str], where: str) -> str:
    """`text` with every $(name) replaced; SplitError names `where` and the known variables for an unknown one."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$(":
            return "$("
        name = match.group(1)
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise SplitError(f"{where}: unknown variable $({name}); known: {known} "
                             f"(for the shell's command substitution write $$({name}))")
        return variables[name]

    return _VAR.sub(repl, text)


def references(text: str) -> set[str]:
    return {m.group(1) for m in _VAR.finditer(text) if m.group(1)}


def _fmt(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- splitByJobvars -----------------------------------------------------------------------------------------


def _bounded(name: str, var: Jobvar, base: Path) -> list[str] | None:
    """The values of a variable, or None when it takes the length of what it is zipped with."""
    if isinstance(var, EnumerateVar):
        return [_fmt(v) for v in var.values]
    if isinstance(var, RangeVar):
        values = var.bounded_values()
        if values is not None and not values:
            raise SplitError(f"splitter.jobvarLists.{name}: the range from {var.first} to {var.last} "
                             f"with step {var.step} is empty")
        return None if values is None else [str(v) for v in values]
    if isinstance(var, LinesInFileVar):
        path = Path(var.file) if Path(var.file).is_absolute() else base / var.file
        try:
            lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise SplitError(f"splitter.jobvarLists.{name}.file: cannot read {path}: {exc.strerror}") from exc
        if not lines:
            raise SplitError(f"splitter.jobvarLists.{name}.file: {path} has no non-empty line")
        return lines
    return None  # composite string


def _zip_group(group: str, members: dict[str, Jobvar], base: Path,
               length: int | None = None) -> list[dict[str, str]] | None:
    """The zipped rows of one group (composite strings left for later), or None when no member has a length
    and `length` is not given."""
    bounded = {name: _bounded(name, var, base) for name, var in members.items()}
    lengths = {name: len(v) for name, v in bounded.items() if v is not None}
    if len(set(lengths.values())) > 1:
        what = f"group {group!r}" if group else "the variables without a group"
        detail = ", ".join(f"{n} has {n_}" for n, n_ in lengths.items())
        raise SplitError(f"splitter.jobvarLists: {what} zips its variables, which needs equal lengths: {detail}")
    size = next(iter(lengths.values())) if lengths else length
    if size is None:
        return None
    if length is not None and size != length:
        detail = ", ".join(f"{n} has {n_}" for n, n_ in lengths.items())
        raise SplitError(f"splitter.jobvarLists: the variables without a group are zipped with the product of "
                         f"the groups ({length} sub-jobs), but {detail}")
    rows: list[dict[str, str]] = [{} for _ in range(size)]
    for name, var in members.items():
        if isinstance(var, CompositeStringVar):
            continue
        values = bounded[name]
        for i, row in enumerate(rows):
            row[name] = values[i] if values is not None else str(var.value_at(i))  # type: ignore[union-attr]
    return rows


def _resolve_composites(row: dict[str, str], composites: dict[str, CompositeStringVar],
                        builtins: dict[str, str]) -> None:
    pending = dict(composites)
    while pending:
        ready = [n for n, v in pending.items() if not (references(v.value) & set(pending))]
        if not ready:
            raise SplitError(f"splitter.jobvarLists: composite strings refer to each other in a cycle: "
                             f"{', '.join(sorted(pending))}")
        for name in ready:
            row[name] = substitute(pending.pop(name).value, {**builtins, **row}, f"splitter.jobvarLists.{name}")


def split_by_jobvars(splitter: SplitByJobvars, base: Path) -> list[dict[str, str]]:
    groups: dict[str, dict[str, Jobvar]] = {}
    for name, var in splitter.jobvars.items():
        if not _NAME.match(name) or "." in name:
            raise SplitError(f"splitter.jobvarLists.{name}: a variable name is letters, digits and '_'")
        groups.setdefault(var.group or DEFAULT_GROUP, {})[name] = var
    named = [g for g in groups if g != DEFAULT_GROUP]
    product: list[dict[str, str]] | None = None
    for group in named:
        rows = _zip_group(group, groups[group], base)
        if rows is None:
            raise SplitError(f"splitter.jobvarLists: no variable of group {group!r} has a length "
                             "(give a range `length` or `last`, or a list)")
        product = rows if product is None else [{**a, **b} for a, b in itertools.product(product, rows)]
    if DEFAULT_GROUP in groups:
        rows = _zip_group(DEFAULT_GROUP, groups[DEFAULT_GROUP], base,
                          None if product is None else len(product))
        if rows is None:
            raise SplitError("splitter.jobvarLists: no variable has a length (give a range `length` or `last`, "
                             "or a list): the number of sub-jobs is unknown")
        product = rows if product is None else [{**a, **b} for a, b in zip(product, rows, strict=True)]
    if product is None:  # not reached: jobvarLists has at least one member
        raise SplitError("splitter.jobvarLists: no variables")
    composites = {n: v for n, v in splitter.jobvars.items() if isinstance(v, CompositeStringVar)}
    if composites:
        for i, row in enumerate(product):
            _resolve_composites(row, composites, {"jobid": str(i + 1)})
    return product


# --- splitByEvent -------------------------------------------------------------------------------------------


def split_by_event(splitter: SplitByEvent) -> list[dict[str, str]]:
    """evtmax/skipevt/seed per sub-job: the events are cut into `evtMaxPerJob` pieces (the last one shorter),
    or spread over `njobs` as evenly as possible."""
    total, per, njobs = splitter.total_events, splitter.evt_max_per_job, splitter.njobs
    if total is None:  # the model requires two of the three
        sizes = [per or 1] * (njobs or 1)
    elif per is not None:
        count = math.ceil(total / per)
        if njobs is not None and njobs != count:
            raise SplitError(f"splitter: totalEvents {total} with evtMaxPerJob {per} makes {count} sub-jobs, "
                             f"not njobs {njobs}: give two of the three")
        sizes = [min(per, total - i * per) for i in range(count)]
    else:
        njobs = njobs or 1
        if njobs > total:
            raise SplitError(f"splitter: njobs {njobs} is more than totalEvents {total}")
        base, extra = divmod(total, njobs)
        sizes = [base + (1 if i < extra else 0) for i in range(njobs)]
    rows = []
    skip = 0
    for i, size in enumerate(sizes):
        rows.append({"evtmax": str(size), "skipevt": str(skip), "seed": str(splitter.seed + i)})
        skip += size
    return rows


# --- splitByDataset -----------------------------------------------------------------------------------------


def split_by_dataset(splitter: SplitByDataset, list_files: ListFiles) -> list[tuple[dict[str, str], list[str]]]:
    files = list(list_files(splitter.dataset))
    if not files:
        raise SplitError(f"splitter.dataset: {splitter.dataset} has no files")
    out = []
    n = splitter.files_per_job
    for start in range(0, len(files), n):
        chunk = files[start:start + n]
        names = [f.split(":", 1)[1] for f in chunk]
        out.append(({"input": " ".join(names), "inputs": ",".join(chunk), "nfiles": str(len(chunk))}, chunk))
    return out


# --- all of them --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    subjobs: list[SubJob]
    warnings: list[str]


def split(task: TaskFile, builtins: dict[str, str], list_files: ListFiles | None = None) -> Split:
    """The sub-jobs of `task`. `builtins` are variables every sub-job has (taskname, account...);
    `list_files` lists a dataset's files (splitByDataset only)."""
    splitter = task.splitter
    warnings: list[str] = []
    inputs: list[list[str]]
    if isinstance(splitter, SplitByJobvars):
        rows = split_by_jobvars(splitter, task.directory)
        inputs = [[] for _ in rows]
    elif isinstance(splitter, SplitByEvent):
        rows = split_by_event(splitter)
        inputs = [[] for _ in rows]
    else:
        if list_files is None:
            raise SplitError("splitter: splitByDataset needs Rucio to list the dataset's files")
        pairs = split_by_dataset(splitter, list_files)
        rows = [p[0] for p in pairs]
        inputs = [p[1] for p in pairs]
    if splitter.max_subjobs is not None and len(rows) > splitter.max_subjobs:
        warnings.append(f"splitter.maxSubJobs: {len(rows)} sub-jobs cut to the first {splitter.max_subjobs}")
        rows, inputs = rows[:splitter.max_subjobs], inputs[:splitter.max_subjobs]
    subjobs = []
    for i, (row, files) in enumerate(zip(rows, inputs, strict=True)):
        variables = dict(builtins)
        variables["jobid"] = str(i + 1)
        variables["jobid0"] = f"{i + 1:05d}"
        variables.setdefault("seed", str(splitter.seed + i))
        if splitter.evt_max_per_job is not None:
            variables["evtmax"] = str(splitter.evt_max_per_job)
        variables.update(row)
        subjobs.append(SubJob(i + 1, variables, files))
    return Split(subjobs, warnings)
