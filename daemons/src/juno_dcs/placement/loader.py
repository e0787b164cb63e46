"""Read etc/placement/{raw,production,user}.yaml into `Policies`, or fail with every problem, its line and field.

The same machinery as the topology loader (juno_dcs.topology.loader): YAML with line numbers and duplicate
keys refused, one problem per faulty value, cross references checked on the plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from juno_dcs.errors import ConfigError
from juno_dcs.placement.models import (
    POLICY_MODELS,
    PolicyValueError,
    ProductionPolicy,
    RawPolicy,
    UserPolicy,
    cross_reference_problems,
)
from juno_dcs.topology.loader import validate_located
from juno_dcs.topology.yamlsrc import DataPath, Located, Problem, dotted, load_located, read_text

POLICY_FILES = ("raw", "production", "user")  # each read from <directory>/<kind>.yaml
_TOP = {"raw": "version, account, lifetimes, rules", "production": "version, account, destinations, data_types",
        "user": "version, lifetime, rse_expression, quota, ..."}


class PolicyError(ConfigError):
    """The policy files are not valid; `problems` lists each with file, line, field and reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("the policy is not valid:\n" + "\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class PolicySource:
    """Where a policy file came from, and the line of each of its values (for problems found later)."""

    path: str
    lines: dict[DataPath, int] = field(default_factory=dict)

    def problem(self, path: DataPath, reason: str) -> Problem:
        line = 0
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                line = self.lines[path[:end]]
                break
        return Problem(self.path, line, dotted(path), reason)


class Policies(BaseModel):
    """The three policy files, typed; `sources` maps raw/production/user to their file and lines."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    raw: RawPolicy
    production: ProductionPolicy
    user: UserPolicy
    sources: dict[str, PolicySource] = {}

    def source(self, kind: str) -> PolicySource:
        return self.sources.get(kind) or PolicySource(f"{kind}.yaml")

    @property
    def template_count(self) -> int:
        """Rule templates: raw rules, production data types and the user default."""
        return len(self.raw.rules) + len(self.production.data_types) + 1


def load_policies(directory: str | Path) -> Policies:
    """The policies in `directory` (raw.yaml, production.yaml and user.yaml, each required);
    PolicyError lists every problem of every file."""
    directory = Path(directory)
    models: dict[str, Any] = {}
    sources: dict[str, PolicySource] = {}
    problems: list[Problem] = []
    for kind in POLICY_FILES:
        path = directory / f"{kind}.yaml"
        try:
            model, located = parse_policy(kind, _read(path), str(path))
        except PolicyError as exc:
            problems += exc.problems
            continue
        models[kind] = model
        sources[kind] = PolicySource(str(path), dict(located.lines))
    if problems:
        raise PolicyError(problems)
    return Policies(**models, sources=sources)


def _read(path: Path) -> str:
    text, reason = read_text(path)
    if text is not None:
        return text
    if reason == "no such file":
        reason = f"no such file: the {path.stem} policy is required"
    raise PolicyError([Problem(str(path), 0, "", f"cannot read the policy: {reason}")])


def parse_policy(kind: str, text: str, source: str = "<string>") -> tuple[BaseModel, Located]:
    """The policy of `kind` (raw, production or user) in YAML `text`, and the lines of its values."""
    root = POLICY_MODELS[kind]
    located, problems = load_located(text, source, expected=f"a mapping ({_TOP[kind]})")
    if located is None or (located.data is None and problems):
        raise PolicyError(problems)
    if not isinstance(located.data, dict):
        shown = "a list" if isinstance(located.data, list) else f"the value {located.data!r}"
        raise PolicyError([Problem(source, located.lines.get((), 1), "",
                                   f"the top level must be a mapping ({_TOP[kind]}), not {shown}")])
    model, problems = validate_located(root, located, source, problems,
                                       lambda data: cross_reference_problems(kind, data), PolicyValueError)
    if problems or model is None:
        raise PolicyError(problems)
    return model, located
