"""Read a topology file into a `Topology`, or fail with every problem, its line and its field.

Problems come from three places and are reported together: the YAML itself (syntax, duplicate keys),
the models' field checks (pydantic) and the checks between sections (`cross_reference_problems`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from juno_dcs.errors import ConfigError
from juno_dcs.topology.models import Topology, TopologyValueError, cross_reference_problems
from juno_dcs.topology.yamlsrc import DataPath, Located, Problem, dotted, load_located, read_text

# What a value should have been, by pydantic error type.
_EXPECTED = {
    "string_type": "text", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "bool_type": "true/false", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "list_type": "a list",
}
_BOUNDS = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}


class TopologyError(ConfigError):
    """The topology is not valid; `problems` lists each with file, line, field and reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_topology(path: str | Path) -> Topology:
    """The topology in the file at `path`; TopologyError lists every problem."""
    path = Path(path)
    text, reason = read_text(path)
    if text is not None:
        return parse_topology(text, str(path))
    raise TopologyError([Problem(str(path), 0, "", f"cannot read the topology: {reason}")])


def parse_topology(text: str, source: str = "<string>") -> Topology:
    """The topology in YAML `text`; `source` names it in the problems of the TopologyError."""
    located, problems = load_located(text, source)
    if located is None:
        raise TopologyError(problems)
    if located.data is None and problems:
        raise TopologyError(problems)
    if not isinstance(located.data, dict):
        kind = "a list" if isinstance(located.data, list) else f"the value {located.data!r}"
        line = located.lines.get((), 1)
        raise TopologyError([Problem(source, line, "", f"the top level must be a mapping of sections "
                                                       f"(version, sites, rses, ...), not {kind}")])
    topology, problems = validate_located(Topology, located, source, problems, cross_reference_problems,
                                          TopologyValueError)
    if problems or topology is None:
        raise TopologyError(problems)
    return topology


M = TypeVar("M", bound=BaseModel)


def validate_located(root: type[M], located: Located, source: str, problems: list[Problem],
                     cross_references: Callable[[Any], Sequence[tuple[DataPath, str]]],
                     skip: type[Exception]) -> tuple[M | None, list[Problem]]:
    """`located.data` validated into `root`: the model (None if invalid) and all problems, the YAML walk's
    (`problems`) first merged with the fields' and the cross references', sorted by line."""
    model: M | None = None
    found: list[Problem] = []
    try:
        model = root.model_validate(located.data)
    except ValidationError as exc:
        found = field_problems(exc, located, source, root=root, skip=skip) + [
            Problem(source, line_of(located, path), dotted(path), reason)
            for path, reason in cross_references(located.data)
        ]
    # a value the YAML walk already reported (an unknown tag, say) needs no second complaint
    reported = [dotted(r) for r in located.reported]
    found = [p for p in found if not any(p.field == r or p.field.startswith(f"{r}.") for r in reported)]
    merged = list(dict.fromkeys(problems + found))
    return model, sorted(merged, key=lambda p: (p.line, p.field))


def field_problems(exc: ValidationError, located: Located, source: str, root: type[BaseModel] = Topology,
                   skip: type[Exception] = TopologyValueError) -> list[Problem]:
    """One problem per faulty value of a `root` model; the errors of a union's members are merged into one.
    Errors raised as `skip` (cross references, checked by the loader on the plain data) are left out."""
    groups: dict[tuple[DataPath, bool], list[ErrorDetails]] = {}
    for error in exc.errors(include_url=False):
        if isinstance(error.get("ctx", {}).get("error"), skip):
            continue  # cross references: the loader checks them on the plain data, with the field problems
        path, is_key = _data_path(error, located.data)
        groups.setdefault((path, is_key), []).append(error)
    problems = []
    for (path, _), errors in groups.items():
        if len(errors) == 1 or any(e["type"] not in _EXPECTED for e in errors):
            reason = _reason(errors[0], path, located, root)
        else:  # a union: "expected text, a whole number or true or false"
            kinds = list(dict.fromkeys(_EXPECTED[e["type"]] for e in errors))
            wanted = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
            reason = f"expected {wanted}, got {_show(errors[0]['input'])}"
        problems.append(Problem(source, line_of(located, path), dotted(path), reason))
    return problems


def _data_path(error: ErrorDetails, data: Any) -> tuple[DataPath, bool]:
    """The path of the value at fault in the data: pydantic's loc without union member names and [key]."""
    path: list[str | int] = []
    node = data
    loc = error["loc"]
    for i, part in enumerate(loc):
        if part == "[key]":
            return tuple(path), True
        children = dict(enumerate(node)) if isinstance(node, list) else node
        if isinstance(children, dict) and part in children:
            path.append(part)
            node = children[part]
        elif i == len(loc) - 1 and error["type"] == "missing":
            path.append(part)
    return tuple(path), False


def line_of(located: Located, path: DataPath) -> int:
    """The line of the value at `path`, or of its nearest ancestor present in the file."""
    for end in range(len(path), -1, -1):
        line = located.lines.get(path[:end])
        if line is not None:
            return line
    return 0


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    return repr(value)


def _reason(error: ErrorDetails, path: DataPath, located: Located, root: type[BaseModel]) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1], root)
        return f"unknown key {path[-1]!r}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "missing":
        return f"missing required key {path[-1]!r}"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "literal_error":
        return f"{_show(error['input'])} is not allowed (expected {ctx['expected']})"
    for bound, words in _BOUNDS.items():
        if bound in ctx and kind.endswith(("than", "than_equal")):
            return f"must be {words} {ctx[bound]}, got {_show(error['input'])}"
    if kind in _EXPECTED:
        reason = f"expected {_EXPECTED[kind]}, got {_show(error['input'])}"
        raw = located.plain.get(path)
        if kind == "string_type" and raw is not None and not isinstance(error["input"], str):
            reason += f" (YAML reads the unquoted {raw} as {_show(error['input'])}; write '{raw}' for the text)"
        return reason
    return f"{error['msg']}, got {_show(error['input'])}"


def _allowed_keys(path: DataPath, root: type[BaseModel]) -> list[str]:
    """The keys of the model at `path` (a path into the data), or [] if there is no model there."""
    annotation: Any = root
    for part in path:
        annotation = _unannotated(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        elif get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
        else:
            return []
    annotation = _unannotated(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unannotated(annotation: Any) -> Any:
    """Without Annotated[...] and, for an optional model (`Model | None`), without the None."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if isinstance(annotation, UnionType):
        models = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
    return annotation
