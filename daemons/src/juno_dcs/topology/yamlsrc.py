"""YAML text -> plain data plus the line of every value, with duplicate keys refused.

PyYAML keeps the last of two equal keys silently; a topology with two RSEs of one name must fail instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    source: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


@dataclass
class Located:
    data: Any
    lines: dict[Path_, int]  # path -> 1-based line of the value (of the key, for mapping entries)
    key_lines: dict[Path_, int]  # path -> 1-based line of the key naming it


def load_located(text: str, source: str) -> tuple[Located | None, list[Problem]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        return None, [Problem(source, line, "", f"not valid YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem(source, 0, "", f"not valid YAML: {exc}")]
    if node is None:
        return None, [Problem(source, 1, "", "the file is empty")]
    lines: dict[Path_, int] = {}
    key_lines: dict[Path_, int] = {}
    problems: list[Problem] = []
    data = _walk(node, (), lines, key_lines, problems, source)
    return Located(data, lines, key_lines), problems


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)


def _walk(
    node: yaml.Node, path: Path_, lines: dict[Path_, int], key_lines: dict[Path_, int],
    problems: list[Problem], source: str,
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int) or isinstance(key, bool):
                problems.append(Problem(source, line, _dotted(path), f"a key must be a name, not {key!r}"))
                continue
            if key in seen:
                problems.append(Problem(source, line, _dotted((*path, key)),
                                        f"duplicate key {key!r} (first at line {seen[key]})"))
                continue
            seen[key] = line
            child = (*path, key)
            key_lines[child] = line
            lines[child] = line
            result[key] = _walk(value_node, child, lines, key_lines, problems, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), lines, key_lines, problems, source) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
