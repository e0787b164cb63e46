"""Read a topology file into a `Topology`, or fail with every problem, its line and its field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from juno_dcs.topology.models import Topology, TopologyValueError
from juno_dcs.topology.yamlsrc import Located, Problem, load_located


class TopologyError(ValueError):
    """The topology is not valid; `problems` lists each with file, line, field and reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_topology(path: str | Path) -> Topology:
    path = Path(path)
    try:
        text = path.read_text()
    except (FileNotFoundError, IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise TopologyError([Problem(str(path), 0, "", f"cannot read the topology: {exc.__class__.__name__}")]) from exc
    return parse_topology(text, str(path))


def parse_topology(text: str, source: str = "<string>") -> Topology:
    located, problems = load_located(text, source)
    if located is None:
        raise TopologyError(problems)
    if not isinstance(located.data, dict):
        raise TopologyError([*problems, Problem(source, 1, "", "the top level must be a mapping of sections")])
    if problems:  # duplicate keys: validating the rest would report on data PyYAML never saw
        raise TopologyError(problems)
    try:
        return Topology.model_validate(located.data)
    except ValidationError as exc:
        raise TopologyError(_from_pydantic(exc, located, source)) from None


def _from_pydantic(exc: ValidationError, located: Located, source: str) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        ctx_error = error.get("ctx", {}).get("error")
        if isinstance(ctx_error, TopologyValueError):
            for path, reason in ctx_error.problems:
                problems.append(Problem(source, _line(located, path), ".".join(path), reason))
            continue
        field = ".".join(str(p) for p in loc)
        problems.append(Problem(source, _line(located, loc), field, _reason(error, loc, located)))
    return sorted(problems, key=lambda p: (p.line, p.field))


def _line(located: Located, path: tuple[Any, ...]) -> int:
    """The line of the value at `path`, or of its nearest ancestor present in the file."""
    for end in range(len(path), -1, -1):
        line = located.lines.get(tuple(path[:end]))
        if line is not None:
            return line
    return 0


def _reason(error: Any, loc: tuple[Any, ...], located: Located) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if kind == "literal_error":
        return f"{error['input']!r} is not allowed (expected {error['msg'].removeprefix('Input should be ')})"
    if kind == "string_pattern_mismatch":
        return f"{error['input']!r} does not match {error['ctx']['pattern']}"
    msg = str(error["msg"]).removeprefix("Value error, ")
    return f"{msg} (got {error['input']!r})" if "input" in error and not isinstance(error["input"], dict) else msg
