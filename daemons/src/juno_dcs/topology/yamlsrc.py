"""YAML text -> plain data plus the line of every value, with duplicate keys refused.

PyYAML keeps the last of two equal keys silently; a topology with two RSEs of one name must fail instead.
The text is composed into nodes (SafeLoader) and walked here, so every value keeps its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DataPath = tuple[str | int, ...]

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a topology: line 0 means the whole file; field is a dotted path or ""."""

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
    lines: dict[DataPath, int] = field(default_factory=dict)  # 1-based line of each value (its key's, in a mapping)
    plain: dict[DataPath, str] = field(default_factory=dict)  # source text of unquoted scalars, for hints
    reported: set[DataPath] = field(default_factory=set)  # values already reported (e.g. unknown tags)


def dotted(path: DataPath) -> str:
    return ".".join(str(p) for p in path)


def load_located(text: str, source: str, expected: str = "a mapping of sections (version, sites, ...)",
                 ) -> tuple[Located | None, list[Problem]]:
    """The data and its lines, and the problems found on the way; None if there is no data at all.
    `expected` describes the top level for the complaint about an empty file."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem and exc.problem.startswith("but "):
            what = f"{exc.context}, {exc.problem}"  # "expected a single document in the stream, but found another"
        elif exc.context and exc.problem and exc.context_mark is not None:
            what += f" ({exc.context} at line {exc.context_mark.line + 1})"
        reason = f"not valid YAML: {what}"
        return None, [Problem(source, mark.line + 1 if mark is not None else 0, "", reason)]
    except yaml.YAMLError as exc:
        return None, [Problem(source, 0, "", f"not valid YAML: {exc}")]
    if node is None:
        return None, [Problem(source, 0, "", f"the file is empty; expected {expected}")]
    walker = _Walker(source)
    located = Located(walker.walk(node, ()), walker.lines, walker.plain, walker.reported)
    return located, walker.problems


class _Walker:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[DataPath, int] = {}
        self.plain: dict[DataPath, str] = {}
        self.reported: set[DataPath] = set()
        self.problems: list[Problem] = []
        self._active: set[int] = set()  # nodes being walked: an alias to one of them is a loop
        self._constructor = yaml.SafeLoader("")

    def _problem(self, node: yaml.Node, path: DataPath, reason: str, *, poison: bool = False) -> None:
        self.problems.append(Problem(self.source, node.start_mark.line + 1, dotted(path), reason))
        if poison:
            self.reported.add(path)

    def walk(self, node: yaml.Node, path: DataPath) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._active:
            self._problem(node, path, "an alias refers to a value that contains it", poison=True)
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        expected = _MAP_TAG if isinstance(node, yaml.MappingNode) else _SEQ_TAG
        if node.tag != expected:
            self._problem(node, path, f"unsupported YAML tag {node.tag!r}", poison=True)
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: DataPath) -> Any:
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            self._problem(node, path, f"unsupported YAML tag {node.tag!r}", poison=True)
            return None
        if node.style is None:
            self.plain[path] = node.value
        return value

    def _mapping(self, node: yaml.MappingNode, path: DataPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node, merged in self._entries(node, path):
            key = self._key(key_node, path)
            if key is None:
                continue
            line = key_node.start_mark.line + 1
            if key in result:
                if not merged:  # a merged key is overridden by the mapping's own one, as YAML says
                    self._problem(key_node, (*path, key), f"duplicate key {key!r} (first at line {first_line[key]})")
                continue
            first_line[key] = line
            self.lines[(*path, key)] = line
            result[key] = self.walk(value_node, (*path, key))
        return result

    def _entries(self, node: yaml.MappingNode, path: DataPath) -> list[tuple[yaml.Node, yaml.Node, bool]]:
        """The mapping's own entries, then those of its merge keys (<<), flagged as merged."""
        own: list[tuple[yaml.Node, yaml.Node, bool]] = []
        merged: list[tuple[yaml.Node, yaml.Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node, False))
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            if not all(isinstance(s, yaml.MappingNode) for s in sources):
                self._problem(key_node, path, "a merge key (<<) needs a mapping or a list of mappings")
                continue
            for source in sources:
                if id(source) in self._active:
                    self._problem(key_node, path, "a merge key (<<) refers to a mapping that contains it")
                    continue
                self._active.add(id(source))
                merged.extend((k, v, True) for k, v, _ in self._entries(source, path))
                self._active.discard(id(source))
        return own + merged

    def _key(self, key_node: yaml.Node, path: DataPath) -> str | None:
        if not isinstance(key_node, yaml.ScalarNode):
            self._problem(key_node, path, "a key must be a name, not a mapping or a list")
            return None
        try:
            key = self._constructor.construct_object(key_node, deep=True)
        except yaml.YAMLError:
            self._problem(key_node, path, f"unsupported YAML tag {key_node.tag!r} on a key")
            return None
        if not isinstance(key, str):
            self._problem(key_node, path, f"key {key_node.value!r} is not a name: YAML reads it as "
                                          f"{type(key).__name__} {key!r}; quote it")
            return None
        return key


def read_text(path: Path) -> tuple[str | None, str]:
    """The file's text and "", or None and why it cannot be read (for a Problem of line 0)."""
    try:
        return path.read_text(encoding="utf-8"), ""
    except FileNotFoundError:
        return None, "no such file"
    except IsADirectoryError:
        return None, "it is a directory"
    except PermissionError:
        return None, "permission denied"
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start})"
    except OSError as exc:
        return None, exc.strerror or exc.__class__.__name__
