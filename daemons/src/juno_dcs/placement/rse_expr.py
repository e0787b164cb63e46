"""Rucio RSE expressions evaluated against the topology, without a server.

What this matches of Rucio 41 (rucio/core/rse_expression_parser.py):

- Terms: an RSE name (``IHEP_DISK``), ``key=value``, ``key<number``, ``key>number`` and ``*`` (every RSE).
  A bare name means "attribute <name> is True"; Rucio gives every RSE the attribute ``<its name>=True``, so a
  bare name selects that RSE (or the RSEs with a true boolean attribute of that name).
- Operators ``&`` (intersection), ``|`` (union) and ``\\`` (difference) have NO precedence: Rucio folds them
  strictly from left to right, so ``A|B&C`` is ``(A|B)&C``. Parentheses group.
- Rucio's character sets: a name is letters and digits in groups joined by single ``_`` or ``-``; a key may
  also hold ``.``; a value is letters, digits, ``_`` and ``-``. No spaces anywhere.
- ``<`` and ``>`` compare numerically; an RSE whose attribute is not a number is left out.
- ``key=value`` compares text; ``rse`` and ``rse_type`` are RSE columns in Rucio and are offered here too.

Where this is stricter than Rucio (so that `juno-dcs placement check` catches mistakes early):

- A name or key that no RSE has is an error: "unknown RSE or attribute 'X' in expression 'E'" (Rucio would
  just select nothing).
- ``key!=value`` is refused with a hint: Rucio 41 has no ``!=``; write ``*\\key=value``.
- ``key<value`` with a value that is not a number is an error (Rucio selects nothing).
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from juno_dcs.errors import ConfigError
from juno_dcs.topology import Topology

AttrValue = str | int | bool
AttributeTable = Mapping[str, Mapping[str, AttrValue]]  # RSE -> attribute -> value

_NAME = re.compile(r"[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*")
_ATTRIBUTE = re.compile(r"(?P<key>[A-Za-z0-9._-]+)(?P<op>!=|[=<>])(?P<value>[A-Za-z0-9_-]*)")
_OPERATORS = {"&": "intersection", "|": "union", "\\": "difference"}


class RSEExpressionError(ConfigError, ValueError):  # ValueError: also raised in pydantic validators
    """An expression that is not valid Rucio syntax (`position` is 0-based) or names unknown RSEs/attributes."""

    def __init__(self, expression: str, reason: str, position: int | None = None) -> None:
        self.expression = expression
        self.reason = reason
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{reason}{where} in expression {expression!r}")


@dataclass(frozen=True)
class All:
    """``*``: every RSE."""


@dataclass(frozen=True)
class Compare:
    """``key=value``, ``key<value``, ``key>value``; a bare name is Compare(name, "=", True)."""

    key: str
    op: str
    value: str | bool
    position: int


@dataclass(frozen=True)
class Binary:
    op: str  # "&", "|" or "\\"
    left: Node
    right: Node


Node = All | Compare | Binary


@functools.lru_cache(maxsize=1024)
def parse(expression: str) -> Node:
    """The syntax tree of `expression`; RSEExpressionError with the position of the first mistake. (Trees are
    frozen dataclasses: the cached one is shared safely.)"""
    parser = _Parser(expression)
    node = parser.expression(depth=0)
    if parser.pos != len(expression):  # only a stray ')' stops the top level early
        parser.fail("unbalanced ')'")
    return node


def attribute_table(topology: Topology) -> dict[str, dict[str, AttrValue]]:
    """Each RSE's attributes as Rucio would see them: the topology's, `<name>=True`, `rse` and `rse_type`."""
    return {
        name: {**topology.rse_attributes(name), name: True, "rse": name, "rse_type": topology.rse_type(name)}
        for name in topology.rses
    }


_TABLES: dict[int, AttributeTable] = {}


def _table_of(topology: Topology) -> AttributeTable:
    """attribute_table once per topology object (a frozen model: it cannot change), dropped when the topology goes.
    A panel of thousands of blocks evaluates the same few expressions thousands of times."""
    key = id(topology)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = attribute_table(topology)
        weakref.finalize(topology, _TABLES.pop, key, None)
    return table


def evaluate(expression: str, topology: Topology | AttributeTable) -> list[str]:
    """The sorted names of the RSEs that `expression` selects (possibly none)."""
    table = _table_of(topology) if isinstance(topology, Topology) else topology
    return sorted(_resolve(parse(expression), table, expression))


def _resolve(node: Node, table: AttributeTable, expression: str) -> set[str]:
    if isinstance(node, All):
        return set(table)
    if isinstance(node, Binary):
        left, right = _resolve(node.left, table, expression), _resolve(node.right, table, expression)
        return left & right if node.op == "&" else left | right if node.op == "|" else left - right
    if not any(node.key in attrs for attrs in table.values()):
        raise RSEExpressionError(expression, f"unknown RSE or attribute {node.key!r}")
    if node.op == "=":
        return {rse for rse, attrs in table.items() if node.key in attrs and _equal(attrs[node.key], node.value)}
    try:
        bound = float(str(node.value))
    except ValueError:
        raise RSEExpressionError(expression, f"{node.key}{node.op}{node.value}: {node.op!r} compares with a number",
                                 node.position) from None
    selected = set()
    for rse, attrs in table.items():
        number = _number(attrs.get(node.key))
        if number is not None and (number < bound if node.op == "<" else number > bound):
            selected.add(rse)
    return selected


def _equal(actual: AttrValue, wanted: str | bool) -> bool:
    if isinstance(wanted, bool):  # a bare name: the attribute must be the boolean True
        return actual is True
    if isinstance(actual, bool):  # Rucio keeps booleans as the text True/False
        return wanted.lower() == str(actual).lower()
    return str(actual) == wanted


def _number(value: AttrValue | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except ValueError:
        return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, reason: str, position: int | None = None) -> NoReturn:
        raise RSEExpressionError(self.text, reason, self.pos if position is None else position)

    def expression(self, depth: int) -> Node:
        node = self.term(depth)
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == ")":
                if depth == 0:
                    self.fail("unbalanced ')'")
                return node
            if char not in _OPERATORS:
                self.fail(f"expected an operator (&, | or \\) or the end, found {char!r}")
            self.pos += 1
            node = Binary(char, node, self.term(depth))  # left to right, no precedence, as Rucio
        return node

    def term(self, depth: int) -> Node:
        if self.pos >= len(self.text):
            self.fail("the expression is empty" if not self.text else "expected an RSE, attribute or '(' at the end")
        char = self.text[self.pos]
        if char == "(":
            start = self.pos
            self.pos += 1
            node = self.expression(depth + 1)
            if self.pos >= len(self.text):
                self.fail("unbalanced '(': no matching ')'", start)
            self.pos += 1  # the ')'
            return node
        if char == "*":
            self.pos += 1
            return All()
        if char.isspace():
            self.fail("Rucio expressions have no spaces")
        return self.primitive()

    def primitive(self) -> Node:
        start = self.pos
        match = _ATTRIBUTE.match(self.text, start)
        if match:
            key, op, value = match["key"], match["op"], match["value"]
            if op == "!=":
                self.fail(f"Rucio has no '!='; write *\\{key}={value} for 'every RSE but those with {key}={value}'",
                          start + len(key))
            if not value:
                self.fail(f"expected a value after {key}{op}", match.end())
            self.pos = match.end()
            return Compare(key, op, value, start)
        match = _NAME.match(self.text, start)
        if match is None:
            self.fail(f"expected an RSE name, key=value, '*' or '(', found {self.text[start]!r}")
        self.pos = match.end()
        return Compare(match.group(), "=", True, start)
