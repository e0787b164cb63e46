"""ROOT files of the payload chain, read and written with uproot.

Every file holds one TTree named after its step (`sim`, `elec`, `calib`, `rec`) and a TObjString `meta`
(JSON: the step, the detector model's version, the arguments, for `calib` the energy scale). Jagged branches
share one counter: a record field `hit` of fields `pmt`, `time` is written as branches `hit_pmt`, `hit_time`
with the counter `nhit`.

Outputs are written to `<output>.tmp-<pid>` next to the output and renamed at the end, so a failed step leaves
no half-written file under the output's name.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import awkward as ak  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import uproot  # type: ignore[import-untyped]

from juno_dcs.payloads.detector import DETECTOR_VERSION
from juno_dcs.payloads.errors import PayloadInputError

META = "meta"
TRUTH = ("event_id", "pdg", "energy_mev", "x_mm", "y_mm", "z_mm", "edep_mev")
TRUTH_TYPES: dict[str, str] = {"event_id": "int64", "pdg": "int32", "energy_mev": "float64", "x_mm": "float64",
                               "y_mm": "float64", "z_mm": "float64", "edep_mev": "float64"}
CHUNK = 500  # events per read and per basket written


@dataclass
class Summary:
    """The one-line JSON a step prints on stdout."""

    step: str
    events: int
    bytes: int
    output: str
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"step": self.step, "events": self.events, "bytes": self.bytes, "output": self.output,
                           "seconds": round(self.seconds, 3), **self.extra}, sort_keys=False)


@dataclass(frozen=True)
class InputTree:
    """An input's checked tree; `with open_input(...) as source:` closes the file."""

    path: Path
    root: Any  # the uproot file
    tree: Any  # its TTree
    meta: dict[str, Any]

    def __enter__(self) -> InputTree:
        return self

    def __exit__(self, *_: object) -> None:
        self.root.close()

    @property
    def entries(self) -> int:
        return int(self.tree.num_entries)

    def chunks(self, branches: Sequence[str], step_size: int = CHUNK, evtmax: int = -1) -> Iterator[ak.Array]:
        """The branches in chunks; only the first `evtmax` events unless it is -1."""
        stop = None if evtmax < 0 else min(evtmax, self.entries)
        try:
            yield from self.tree.iterate(list(branches), step_size=step_size, library="ak", entry_stop=stop)
        except (OSError, ValueError, KeyError) as exc:
            raise PayloadInputError(f"{self.path}: cannot read tree {self.tree.name!r}: {exc}") from exc


def open_input(path: Path, tree_name: str, branches: Sequence[str], *, needs: str) -> InputTree:
    """The tree `tree_name` of the ROOT file `path` with `branches`; every problem names the file.
    `needs` says which step makes such a file (for the message)."""
    if not path.exists():
        raise PayloadInputError(f"input {path}: no such file")
    if not path.is_file():
        raise PayloadInputError(f"input {path}: not a regular file")
    try:
        root = uproot.open(path)
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
        reason = " ".join(str(exc).split())
        raise PayloadInputError(f"input {path}: not a readable ROOT file ({exc.__class__.__name__}: {reason})") from exc
    try:
        return _checked(root, path, tree_name, branches, needs)
    except BaseException:
        root.close()
        raise


def _checked(root: Any, path: Path, tree_name: str, branches: Sequence[str], needs: str) -> InputTree:
    classes = {k.split(";")[0]: cls for k, cls in root.classnames().items()}
    if tree_name in classes and classes[tree_name] != "TTree":
        raise PayloadInputError(f"input {path}: {tree_name!r} is a {classes[tree_name]}, not a TTree")
    trees = sorted(name for name, cls in classes.items() if cls == "TTree")
    if tree_name not in trees:
        found = ", ".join(trees) or "none"
        raise PayloadInputError(f"input {path}: no TTree {tree_name!r} (trees: {found}); "
                                f"this step reads the output of {needs}")
    meta = read_meta(root, path)
    if meta.get("detector") != DETECTOR_VERSION:
        raise PayloadInputError(f"input {path}: made for detector model {meta.get('detector')!r}, "
                                f"this program simulates {DETECTOR_VERSION!r}")
    tree = root[tree_name]
    available = set(tree.keys())
    missing = [b for b in branches if b not in available]
    if missing:
        raise PayloadInputError(f"input {path}: tree {tree_name!r} lacks branch(es) {', '.join(missing)}")
    if tree.num_entries == 0:
        raise PayloadInputError(f"input {path}: tree {tree_name!r} has no events")
    return InputTree(path, root, tree, meta)


def read_meta(root: Any, path: Path) -> dict[str, Any]:
    names = {k.split(";")[0] for k in root.keys(recursive=False)}
    if META not in names:
        raise PayloadInputError(f"input {path}: no {META!r} object (not written by juno-payload)")
    try:
        meta = json.loads(str(root[META]))
    except (ValueError, TypeError) as exc:
        raise PayloadInputError(f"input {path}: {META!r} is not JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise PayloadInputError(f"input {path}: {META!r} is not a JSON object")
    return meta


def check_output(output: Path, *inputs: Path) -> None:
    if not output.name.endswith(".root"):
        raise PayloadInputError(f"output {output}: the name must end with .root")
    if not output.parent.is_dir():
        raise PayloadInputError(f"output {output}: directory {output.parent} does not exist")
    if output.is_dir():
        raise PayloadInputError(f"output {output}: is a directory")
    for path in inputs:
        if path.exists() and output.exists() and path.resolve() == output.resolve():
            raise PayloadInputError(f"output {output}: is the input too; give another name")


def jagged(counts: npt.NDArray[np.int64], **fields: npt.NDArray[Any]) -> ak.Array:
    """A jagged record array: event i holds counts[i] entries of the flat `fields`."""
    return ak.unflatten(ak.zip(fields), counts)


def flat(array: ak.Array, dtype: type[np.generic] | None = None) -> npt.NDArray[Any]:
    values: npt.NDArray[Any] = np.asarray(ak.to_numpy(ak.flatten(array, axis=None)))
    return values.astype(dtype, copy=False) if dtype is not None else values


def counts_of(array: ak.Array) -> npt.NDArray[np.int64]:
    return np.asarray(ak.to_numpy(ak.num(array, axis=1)), dtype=np.int64)


class OutputTree:
    """`with OutputTree(path, "sim", schema, meta) as out: out.extend({...})`: renamed into place on success."""

    def __init__(self, path: Path, tree_name: str, schema: Mapping[str, str], meta: Mapping[str, Any],
                 objects: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.objects = dict(objects or {})  # more TObjStrings to store (name -> text)
        self.tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        self.tree_name = tree_name
        self.schema = dict(schema)
        self.meta = {"detector": DETECTOR_VERSION, **meta}
        self.events = 0
        self._file: Any = None
        self._tree: Any = None
        self._started = time.monotonic()

    def __enter__(self) -> OutputTree:
        try:
            self._file = uproot.recreate(self.tmp)
        except OSError as exc:
            raise PayloadInputError(f"output {self.path}: cannot write ({exc})") from exc
        self._file[META] = json.dumps(self.meta, sort_keys=True)
        for name, text in self.objects.items():
            self._file[name] = text
        self._tree = self._file.mktree(self.tree_name, self.schema, field_name=lambda outer, inner: f"{outer}_{inner}",
                                       counter_name=lambda name: f"n{name}")
        return self

    def extend(self, columns: Mapping[str, Any]) -> None:
        self._tree.extend(dict(columns))
        self.events += len(next(iter(columns.values())))

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._file.close()
        if kind is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)

    def summary(self, step: str, **extra: Any) -> Summary:
        return Summary(step=step, events=self.events, bytes=self.path.stat().st_size, output=str(self.path),
                       seconds=time.monotonic() - self._started, extra=extra)


def truth_columns(chunk: ak.Array) -> dict[str, npt.NDArray[Any]]:
    """The event-level truth branches of a chunk, copied into the next step's tree."""
    return {name: ak.to_numpy(chunk[name]).astype(TRUTH_TYPES[name], copy=False) for name in TRUTH}
