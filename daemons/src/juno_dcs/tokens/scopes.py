"""Scopes of the WLCG Common JWT Profile and what one permits. Pure logic, no I/O.

A storage scope is `storage.<action>:<path>` (`storage.read`, `storage.create`, `storage.modify`, `storage.stage`);
it covers its path and everything under it, compared element by element (`/raw` covers `/raw/2026`, not `/rawx`).
A path with `.` or `..` elements, a backslash or a control character is not a path: it is refused, never
normalised, so that no scope can climb out of the area it names. Other scopes (`compute.create`, `fts`,
`openid`, ...) are plain names.
"""

from __future__ import annotations

from dataclasses import dataclass

STORAGE_ACTIONS = ("storage.read", "storage.create", "storage.modify", "storage.stage")
WLCG_VERSION = "1.0"
ANY_AUDIENCE = "https://wlcg.cern.ch/jwt/v1/any"


class ScopeError(ValueError):
    """A scope that is not well formed; the message says which and why."""


@dataclass(frozen=True, order=True)
class Scope:
    name: str
    path: str | None = None  # storage scopes only

    def __str__(self) -> str:
        return self.name if self.path is None else f"{self.name}:{self.path}"

    def covers(self, other: Scope) -> bool:
        """Whether holding this scope permits `other` (same name, and for paths: the same or a deeper path)."""
        if self.name != other.name:
            return False
        if self.path is None or other.path is None:
            return self.path == other.path
        return path_within(other.path, self.path)


def clean_path(path: str, where: str = "scope") -> str:
    """`path` as a scope's path: absolute, no empty, `.` or `..` elements, no backslash or control characters;
    a trailing slash is dropped. Raises ScopeError saying what is wrong."""
    if not path.startswith("/"):
        raise ScopeError(f"{where}: path {path!r} is not absolute")
    if "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise ScopeError(f"{where}: path {path!r} has a backslash or a control character")
    parts = path.split("/")[1:]
    if parts and parts[-1] == "":
        parts = parts[:-1]
    for part in parts:
        if part in ("", ".", ".."):
            raise ScopeError(f"{where}: path {path!r} has an empty, '.' or '..' element")
    return "/" + "/".join(parts)


def path_within(path: str, area: str) -> bool:
    """Whether the clean `path` is `area` or under it."""
    if area == "/":
        return True
    return path == area or path.startswith(area + "/")


def parse_scope(text: str) -> Scope:
    """One scope; storage scopes must carry a clean path (`storage.read` alone means `storage.read:/`)."""
    if not text or any(c.isspace() for c in text):
        raise ScopeError(f"scope {text!r}: empty or has white space")
    name, sep, path = text.partition(":")
    if name in STORAGE_ACTIONS:
        return Scope(name, clean_path(path if sep else "/", f"scope {text!r}"))
    if sep:
        raise ScopeError(f"scope {text!r}: only storage scopes ({', '.join(STORAGE_ACTIONS)}) take a path")
    return Scope(name)


def parse_scopes(text: str | None) -> list[Scope]:
    """A space-separated scope claim or request."""
    return [parse_scope(item) for item in (text or "").split()]


def format_scopes(scopes: list[Scope]) -> str:
    return " ".join(str(s) for s in scopes)


def permitted(requested: Scope, held: list[Scope]) -> bool:
    return any(h.covers(requested) for h in held)


def storage_permits(held: list[Scope], action: str, path: str) -> bool:
    """Whether scopes `held` allow `action` (a storage scope name) on the file or directory `path`."""
    try:
        wanted = Scope(action, clean_path(path, "path"))
    except ScopeError:
        return False
    return permitted(wanted, held)
