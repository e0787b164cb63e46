"""The fast fill's row mapping (benchmarks/scale_load.py), on a template made by hand."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from benchmarks.scale_load import DAEMON_FLAGS, Template, counter_rows, names_of, unit_rows
from benchmarks.scale_shape import unit

SCOPES = ("user.alice", "user.bob", "user.carol")
THEN, NOW = dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _account(scope: str) -> str:
    return {"raw": "rawdata", "mc": "production"}.get(scope, scope.removeprefix("user."))


def _template(extra: dict[str, Any] | None = None) -> Template:
    """Unit 0's rows as Rucio registers them (its daemons' flags still set), for a raw block and a user dataset."""
    specs = unit(0, SCOPES)
    raw, user = specs[0], specs[-1]
    t = object.__new__(Template)
    t.specs = specs
    rows: dict[str, list[dict[str, Any]]] = {"dids": [], "contents": [], "replicas": [], "did_meta": []}
    for d in (raw, user):
        rows["dids"].append({"scope": d.scope, "name": d.name, "account": _account(d.scope), "did_type": "D",
                             "bytes": 1, "length": len(d.files), "adler32": None, "is_new": True,
                             "closed_at": THEN, "created_at": THEN, **(extra or {})})
        for f in d.files[:3]:
            rows["dids"].append({"scope": d.scope, "name": f.name, "account": _account(d.scope), "did_type": "F",
                                 "bytes": f.bytes, "length": None, "adler32": f.adler32, "is_new": True,
                                 "closed_at": None, "created_at": THEN, **(extra or {})})
            rows["contents"].append({"scope": d.scope, "name": d.name, "child_scope": d.scope, "child_name": f.name,
                                     "bytes": f.bytes, "adler32": f.adler32, "rule_evaluation": True,
                                     "created_at": THEN})
            rows["replicas"].append({"scope": d.scope, "name": f.name, "bytes": f.bytes, "adler32": f.adler32,
                                     "state": "A", "created_at": THEN})
    rows["did_meta"].append({"scope": raw.scope, "name": raw.name, "meta": dict(raw.meta), "created_at": THEN})
    t.rows = rows
    t.columns = {table: list(r[0]) for table, r in rows.items()}
    return t


def _as_dicts(template: Template, rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[dict[str, Any]]]:
    return {table: [dict(zip(template.columns[table], r, strict=True)) for r in rows[table]] for table in rows}


def test_a_unit_gets_its_own_names_sizes_accounts_metadata_and_time() -> None:
    template = _template()
    target = unit(7, SCOPES)
    names = names_of(template.specs, target)
    rows = _as_dicts(template, unit_rows(template, names, _account, NOW))
    raw, user = target[0], target[-1]
    assert user.scope != template.specs[-1].scope  # the shape moves user datasets between scopes: mapped too
    block = next(r for r in rows["dids"] if r["name"] == raw.name)
    assert block["bytes"] == sum(f.bytes for f in raw.files)
    assert block["length"] == 1000
    assert block["closed_at"] == NOW
    assert block["created_at"] == NOW
    first = next(r for r in rows["dids"] if r["name"] == user.files[0].name)
    assert (first["scope"], first["account"]) == (user.scope, _account(user.scope))
    assert (first["bytes"], first["adler32"]) == (user.files[0].bytes, user.files[0].adler32)
    assert first["closed_at"] is None  # a null time stays null
    attach = next(r for r in rows["contents"] if r["child_name"] == raw.files[2].name)
    assert (attach["name"], attach["bytes"], attach["adler32"]) == (raw.name, raw.files[2].bytes, raw.files[2].adler32)
    assert [r["name"] for r in rows["replicas"]][:3] == [f.name for f in raw.files[:3]]
    assert json.loads(rows["did_meta"][0]["meta"]) == dict(raw.meta)
    assert dict(raw.meta)["block_date"] != dict(template.specs[0].meta)["block_date"]
    # as Rucio's daemons leave a registration: not new, nothing to evaluate
    for table, flags in DAEMON_FLAGS.items():
        for flag, value in flags.items():
            assert all(r[flag] is value for r in rows[table])


def test_rse_counters_get_one_row_per_dataset() -> None:
    target = unit(3, SCOPES)
    names = names_of(_template().specs, target)
    counters = counter_rows(names, target, "rse", NOW)
    assert len(counters) == len(target)
    assert sum(c[2] for c in counters) == 10_000
    assert sum(c[3] for c in counters) == sum(f.bytes for d in target for f in d.files)


def test_a_column_that_carries_the_template_name_is_refused() -> None:
    template = _template({"guid": unit(0, SCOPES)[0].name})
    names = names_of(template.specs, unit(1, SCOPES))
    with pytest.raises(RuntimeError, match="column guid holds the template's name"):
        unit_rows(template, names, _account, NOW)


def test_metadata_keys_that_differ_from_the_template_are_refused() -> None:
    template = _template()
    template.rows["did_meta"][0]["meta"] = {"other": 1}
    names = names_of(template.specs, unit(1, SCOPES))
    with pytest.raises(RuntimeError, match="metadata keys differ"):
        unit_rows(template, names, _account, NOW)


def test_units_of_another_shape_are_refused() -> None:
    specs = unit(0, SCOPES)
    with pytest.raises(ValueError, match="differ in shape"):
        names_of(specs, specs[:-1])
