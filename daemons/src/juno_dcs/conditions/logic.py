"""Condition data on top of the database: the admin writes and the service's lookups. Plain functions that
take the connection of the caller's transaction; no web framework here.

Every write is safe to replay: creating an existing open tag, adding the interval that is already the newest
one of its folder, locking a locked tag or importing a tag that is there with the same content change nothing.
A locked tag refuses every change (Conflict).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from juno_dcs.conditions import db
from juno_dcs.conditions.errors import ConditionsInputError, Conflict, MapTooLarge, NotFound
from juno_dcs.conditions.models import (
    PAYLOAD_TYPES,
    ExportedIov,
    FolderInfo,
    IovInfo,
    RunRange,
    TagExport,
    TagInfo,
    check_name,
    decode_payload,
    payload_hash,
)


def utcnow() -> dt.datetime:
    """Now in UTC, naive, as the database stores it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def _tag_info(row: db.Row) -> TagInfo:
    return TagInfo(name=row["name"], state=row["state"], description=row["description"],
                   created=_aware(row["created"]), modified=_aware(row["modified"]),  # type: ignore[arg-type]
                   locked=_aware(row["locked"]))


def _iov_info(row: db.Row) -> IovInfo:
    return IovInfo(folder=row["folder"], payload_type=row["payload_type"], first_run=row["first_run"],
                   last_run=row["last_run"], payload_hash=row["payload_hash"], payload_size=row["payload_size"])


def _require_tag(conn: Connection, name: str, *, for_update: bool = False) -> db.Row:
    row = db.get_tag(conn, check_name(name, "global tag"), for_update=for_update)
    if row is None:
        raise NotFound(f"unknown global tag {name!r}")
    return row


def _require_open(row: db.Row, action: str) -> None:
    if row["state"] != "open":
        raise Conflict(f"global tag {row['name']!r} is locked: cannot {action}")


# --- admin writes
def create_tag(conn: Connection, name: str, description: str = "") -> tuple[TagInfo, bool]:
    """Create an open tag; (tag, created). An existing open tag is returned as it is (a replay)."""
    check_name(name, "global tag")
    row = db.get_tag(conn, name, for_update=True)
    if row is not None:
        _require_open(row, "create it again")
        return _tag_info(row), False
    db.insert_tag(conn, name, description, "open", utcnow())
    return _tag_info(_require_tag(conn, name)), True


@dataclass(frozen=True)
class Added:
    payload_hash: str
    new_payload: bool
    new_iov: bool
    new_folder: bool


def _ensure_folder(conn: Connection, folder: FolderInfo) -> tuple[int, bool]:
    row = db.get_folder(conn, folder.name)
    if row is None:
        return db.insert_folder(conn, folder.name, folder.payload_type, folder.description), True
    if row["payload_type"] != folder.payload_type:
        raise Conflict(f"folder {folder.name!r} holds {row['payload_type']} payloads, not {folder.payload_type}")
    return int(row["folder_id"]), False


def folder_for(conn: Connection, name: str, payload_type: str | None, description: str = "") -> FolderInfo:
    """The folder `name` as it is, or as it will be created: a new folder needs its payload type."""
    check_name(name, "folder")
    if payload_type is not None and payload_type not in PAYLOAD_TYPES:
        raise ConditionsInputError(f"payload type {payload_type!r}: expected one of {', '.join(PAYLOAD_TYPES)}")
    row = db.get_folder(conn, name)
    if row is None:
        if payload_type is None:
            raise ConditionsInputError(f"folder {name!r} is new: give its payload type ({', '.join(PAYLOAD_TYPES)})")
        return FolderInfo(name=name, payload_type=payload_type, description=description)
    return FolderInfo(name=name, payload_type=payload_type or row["payload_type"], description=row["description"])


def add_payload(conn: Connection, tag: str, folder: FolderInfo, runs: RunRange, data: bytes) -> Added:
    """Add `data` as the payload of `folder` for `runs` in the open tag `tag` (the newest interval wins where
    it overlaps older ones). The folder is created with its payload type on first use; the payload is checked
    against that type."""
    row = _require_tag(conn, tag, for_update=True)  # serialises the writers of one tag
    _require_open(row, f"add a payload to folder {folder.name}")
    decode_payload(folder.payload_type, data, where=f"payload for folder {folder.name}")
    folder_id, new_folder = _ensure_folder(conn, folder)
    digest = payload_hash(data)
    now = utcnow()
    new_payload = db.insert_payload(conn, digest, data, now)
    newest = db.tag_iovs(conn, int(row["tag_id"]))
    mine = [r for r in newest if r["folder"] == folder.name]
    if mine and (mine[-1]["first_run"], mine[-1]["last_run"], mine[-1]["payload_hash"]) == (
            runs.first, runs.last, digest):
        return Added(digest, new_payload, new_iov=False, new_folder=new_folder)
    db.insert_iov(conn, int(row["tag_id"]), folder_id, runs.first, runs.last, digest, now)
    db.touch_tag(conn, int(row["tag_id"]), utcnow())  # the last statement: `modified` is as late as possible
    return Added(digest, new_payload, new_iov=True, new_folder=new_folder)


def lock_tag(conn: Connection, name: str) -> tuple[TagInfo, bool]:
    """Lock a tag for good; (tag, locked now). Locking a locked tag changes nothing."""
    row = _require_tag(conn, name, for_update=True)
    if row["state"] == "locked":
        return _tag_info(row), False
    if not db.tag_iovs(conn, int(row["tag_id"])):
        raise Conflict(f"global tag {name!r} has no payloads: nothing to lock")
    db.touch_tag(conn, int(row["tag_id"]), utcnow(), lock=True)
    return _tag_info(_require_tag(conn, name)), True


def export_tag(conn: Connection, name: str) -> TagExport:
    row = _require_tag(conn, name)
    rows = db.tag_iovs(conn, int(row["tag_id"]))
    folder_rows = db.tag_folders(conn, int(row["tag_id"]))
    data = db.payloads_of(conn, sorted({r["payload_hash"] for r in rows}))
    return TagExport(
        name=row["name"], state=row["state"], description=row["description"],
        folders=[FolderInfo(name=f["name"], payload_type=f["payload_type"], description=f["description"])
                 for f in folder_rows],
        iovs=[ExportedIov(folder=r["folder"], first_run=r["first_run"], last_run=r["last_run"],
                          payload=r["payload_hash"]) for r in rows],
        payloads={h: base64.b64encode(b).decode() for h, b in data.items()},
    )


def import_tag(conn: Connection, export: TagExport) -> bool:
    """Create the tag of an export file with all its intervals in the caller's transaction; True when imported.
    The same tag with the same content already there: nothing to do (False); with other content: Conflict."""
    existing = db.get_tag(conn, export.name, for_update=True)
    if existing is not None:
        current = export_tag(conn, export.name)
        if (current.state, current.iovs, sorted(current.folders, key=lambda f: f.name)) == (
                export.state, export.iovs, sorted(export.folders, key=lambda f: f.name)):
            return False
        raise Conflict(f"global tag {export.name!r} exists with other content; import it under another name")
    now = utcnow()
    tag_id = db.insert_tag(conn, export.name, export.description, "open", now)
    folder_ids = {f.name: _ensure_folder(conn, f)[0] for f in export.folders}
    for digest in sorted({i.payload for i in export.iovs}):
        db.insert_payload(conn, digest, export.payload_bytes(digest), now)
    for iov in export.iovs:
        db.insert_iov(conn, tag_id, folder_ids[iov.folder], iov.first_run, iov.last_run, iov.payload, now)
    db.touch_tag(conn, tag_id, utcnow(), lock=export.state == "locked")
    return True


# --- reads (admin and service)
def list_tags(conn: Connection) -> list[TagInfo]:
    return [_tag_info(r) for r in db.list_tags(conn)]


@dataclass(frozen=True)
class TagDetails:
    tag: TagInfo
    folders: list[db.Row]
    iovs: list[IovInfo]


def show_tag(conn: Connection, name: str) -> TagDetails:
    row = _require_tag(conn, name)
    return TagDetails(_tag_info(row), db.tag_folders(conn, int(row["tag_id"])),
                      [_iov_info(r) for r in db.tag_iovs(conn, int(row["tag_id"]))])


def get_tag(conn: Connection, name: str) -> TagInfo:
    return _tag_info(_require_tag(conn, name))


def lookup(conn: Connection, tag: str, folder: str, run: int) -> tuple[TagInfo, IovInfo]:
    """The payload of `folder` for `run` in `tag`; NotFound says whether the tag, the folder or the run is
    what is missing."""
    check_name(folder, "folder")
    row = _require_tag(conn, tag)
    found = db.lookup(conn, int(row["tag_id"]), folder, run)
    if found is None:
        if db.get_folder(conn, folder) is None:
            raise NotFound(f"unknown folder {folder!r}")
        raise NotFound(f"no interval of validity of folder {folder!r} in global tag {tag!r} covers run {run}")
    return _tag_info(row), _iov_info(found)


def lookup_all(conn: Connection, tag: str, run: int) -> tuple[TagInfo, list[IovInfo]]:
    """Every folder's payload for `run` in `tag` (folders without an interval covering the run are absent)."""
    row = _require_tag(conn, tag)
    return _tag_info(row), [_iov_info(r) for r in db.lookup_all(conn, int(row["tag_id"]), run)]


MAX_MAP_IOVS = 50_000  # intervals in one IOV map (about 5 MB of JSON); a larger tag is read run by run


def iov_map(conn: Connection, tag: str, limit: int | None = None) -> tuple[TagInfo, list[IovInfo]]:
    """Every interval of `tag`, oldest first: the whole tag's answer to "which payload for run R" in one
    document that does not depend on the run. MapTooLarge beyond `limit` (MAX_MAP_IOVS) intervals."""
    limit = MAX_MAP_IOVS if limit is None else limit
    row = _require_tag(conn, tag)
    rows = db.iov_map(conn, int(row["tag_id"]), limit + 1)
    if len(rows) > limit:
        raise MapTooLarge(f"global tag {tag!r} has more than {limit} intervals of validity: read it run by run "
                          f"(GET /v1/tags/{tag}/runs/{{run}})")
    return _tag_info(row), [_iov_info(r) for r in rows]


def get_payload(conn: Connection, digest: str) -> bytes:
    data = db.get_payload(conn, digest)
    if data is None:
        raise NotFound(f"no payload with sha256 {digest}")
    return data


def get_payloads(conn: Connection, digests: Sequence[str]) -> list[bytes]:
    """The payloads' bytes in the order of `digests`, in one query; NotFound names the missing ones."""
    found = db.payloads_of(conn, digests)
    missing = [d for d in digests if d not in found]
    if missing:
        raise NotFound(f"no payload with sha256 {', '.join(missing)}")
    return [found[d] for d in digests]
