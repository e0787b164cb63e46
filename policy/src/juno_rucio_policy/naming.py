"""JUNO's names: scopes, data types and the name pattern of every kind of DID.

One table (`KINDS`) is the single source: the Rucio schema (schema.py), lfn2pfn, scope extraction, tape hints
and the policy engine all read it, so a name that one accepts the others understand. docs/policy.md shows the
same table for people.

    raw    RUN.<run>.<stream>.<seq>.<YYYYMMDD>.rtraw        a file as SPADE delivers it
           block.<YYYYMMDD>.<stream>                        the daily raw block (a dataset)
    mc     mc.<campaign>.<tag>.<step>.<job>.root            one job's output of one step
           mc.<campaign>.<tag>.<step>.<job>.log.tgz         that job's log
           mc.<campaign>.<tag>.<step>[.log]                 a step's output (or log) dataset
           mc.<campaign>.<tag>                              a production's container
    rec    rec.<pass>.RUN.<run>.<stream>.<seq>.<YYYYMMDD>.root (or .log.tgz)  reconstruction of one raw file
           rec.<pass>.block.<YYYYMMDD>.<stream>[.log]       reconstruction of one raw block
           rec.<pass>.<label>                               any other reconstruction collection
    calib, user.<account>, group.<name>                     Rucio's generic names

run: 6 digits; seq: 5 digits; job: 6 digits; stream: lower-case letters and digits (physics, calib, test...);
campaign, tag and pass: letters, digits, '_' and '-'; step: detsim, elecsim, cal or rec.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date

FIXED_SCOPES = ("raw", "mc", "rec", "calib")
SCOPE_PATTERN = r"^(raw|mc|rec|calib|user\.[a-z0-9_-]+|group\.[a-z0-9_-]+)$"
STEPS = ("detsim", "elecsim", "cal", "rec")
DATA_TYPES = ("raw", "mc.detsim", "mc.elecsim", "mc.cal", "mc.rec", "rec", "log", "calib", "user", "group")

_RUN = r"(?P<run>[0-9]{6})"
STREAM_PATTERN = r"[a-z][a-z0-9]{0,15}"  # physics, calib, test...
_STREAM = rf"(?P<stream>{STREAM_PATTERN})"
_SEQ = r"(?P<seq>[0-9]{5})"
_DATE = r"(?P<date>20[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01]))"
_LABEL = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"
_STEP = "(?P<step>" + "|".join(STEPS) + ")"
_JOB = r"(?P<job>[0-9]{6})"
_OUT = r"(?P<ext>root|log\.tgz)"
_RAW_FILE = rf"RUN\.{_RUN}\.{_STREAM}\.{_SEQ}\.{_DATE}"
_GENERIC = r"[A-Za-z0-9][A-Za-z0-9._-]{0,249}"


@dataclass(frozen=True)
class Kind:
    """One kind of name in a JUNO scope: a regular expression (whole name), whether it names files or
    collections, and a template shown to people when a name does not fit."""

    scope: str
    key: str
    collection: bool
    pattern: str
    template: str

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)


KINDS: tuple[Kind, ...] = (
    Kind("raw", "raw.file", False, rf"^{_RAW_FILE}\.rtraw$", "RUN.<run:NNNNNN>.<stream>.<seq:NNNNN>.<YYYYMMDD>.rtraw"),
    Kind("raw", "raw.block", True, rf"^block\.{_DATE}\.{_STREAM}$", "block.<YYYYMMDD>.<stream>"),
    Kind("mc", "mc.file", False,
         rf"^mc\.(?P<campaign>{_LABEL})\.(?P<tag>{_LABEL})\.{_STEP}\.{_JOB}\.{_OUT}$",
         "mc.<campaign>.<tag>.<detsim|elecsim|cal|rec>.<job:NNNNNN>.<root|log.tgz>"),
    Kind("mc", "mc.dataset", True,
         rf"^mc\.(?P<campaign>{_LABEL})\.(?P<tag>{_LABEL})\.{_STEP}(?P<log>\.log)?$",
         "mc.<campaign>.<tag>.<detsim|elecsim|cal|rec>[.log]"),
    Kind("mc", "mc.container", True, rf"^mc\.(?P<campaign>{_LABEL})\.(?P<tag>{_LABEL})$", "mc.<campaign>.<tag>"),
    Kind("rec", "rec.file", False, rf"^rec\.(?P<pass>{_LABEL})\.{_RAW_FILE}\.{_OUT}$",
         "rec.<pass>.RUN.<run>.<stream>.<seq>.<YYYYMMDD>.<root|log.tgz>"),
    Kind("rec", "rec.block", True, rf"^rec\.(?P<pass>{_LABEL})\.block\.{_DATE}\.{_STREAM}(?P<log>\.log)?$",
         "rec.<pass>.block.<YYYYMMDD>.<stream>[.log]"),
    Kind("rec", "rec.collection", True, rf"^rec\.(?P<pass>{_LABEL})\.(?P<label>{_LABEL})$", "rec.<pass>.<label>"),
)

@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True)
class Parsed:
    """A JUNO name taken apart: its kind (e.g. "raw.file"), data type and fields (run, stream, date...)."""

    scope: str
    name: str
    kind: str
    data_type: str
    fields: dict[str, str]

    @property
    def day(self) -> date | None:
        value = self.fields.get("date")
        return None if value is None else date(int(value[:4]), int(value[4:6]), int(value[6:]))


class BadName(ValueError):
    """A DID name that does not follow JUNO's naming for its scope."""


def kinds_of(scope: str) -> tuple[Kind, ...]:
    return tuple(k for k in KINDS if k.scope == scope)


def scope_problem(scope: str) -> str | None:
    """Why `scope` is not a JUNO scope, or None."""
    if len(scope) > 25:
        return f"scope {scope!r} is longer than Rucio's 25 characters"
    if not _compiled(SCOPE_PATTERN).match(scope):
        return (f"scope {scope!r} is not a JUNO scope: use raw, mc, rec, calib, user.<account> or group.<name> "
                "(lower case)")
    return None


def parse(scope: str, name: str, *, collection: bool | None = None) -> Parsed:
    """Take `scope:name` apart; BadName says why it is not a JUNO name. `collection` restricts the kinds
    to collections (True) or files (False); None tries both."""
    problem = scope_problem(scope)
    if problem:
        raise BadName(problem)
    kinds = [k for k in kinds_of(scope) if collection is None or k.collection == collection]
    if not kinds:
        if not _compiled(rf"^{_GENERIC}$").match(name) or name.endswith("/"):
            raise BadName(f"{scope}:{name}: a name is 1-250 characters, starts with a letter or digit and "
                             "holds only letters, digits, '.', '_' and '-'")
        data_type = scope.split(".")[0]
        return Parsed(scope, name, "generic", data_type if data_type in DATA_TYPES else "calib", {})
    for kind in kinds:
        match = kind.regex.match(name)
        if match:
            fields = {k: v for k, v in match.groupdict().items() if v is not None}
            _check_date(fields, scope, name)
            return Parsed(scope, name, kind.key, _data_type(kind, fields), fields)
    what = "file" if collection is False else "collection" if collection else "name"
    expected = "; ".join(k.template for k in kinds)
    raise BadName(f"{scope}:{name} is not a JUNO {scope} {what}: expected {expected}")


def _check_date(fields: dict[str, str], scope: str, name: str) -> None:
    value = fields.get("date")
    if value is None:
        return
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise BadName(f"{scope}:{name}: {value} is not a calendar date (YYYYMMDD)") from None


def _data_type(kind: Kind, fields: dict[str, str]) -> str:
    if fields.get("ext") == "log.tgz" or fields.get("log"):
        return "log"
    if kind.scope == "mc" and "step" in fields:
        return f"mc.{fields['step']}"
    if kind.scope == "mc":
        return "mc.rec"  # a production's container: its final output
    return kind.scope


def problem(scope: str, name: str, *, collection: bool | None = None) -> str | None:
    """Why `scope:name` is not a JUNO name, or None."""
    try:
        parse(scope, name, collection=collection)
    except BadName as exc:
        return str(exc)
    return None


def block_name(day: date, stream: str) -> str:
    """The daily raw block of `stream` on `day`: exactly raw:block.<YYYYMMDD>.<stream>."""
    name = f"block.{day:%Y%m%d}.{stream}"
    parse("raw", name, collection=True)
    return name


def raw_file_name(run: int, stream: str, seq: int, day: date) -> str:
    name = f"RUN.{run:06d}.{stream}.{seq:05d}.{day:%Y%m%d}.rtraw"
    parse("raw", name, collection=False)
    return name


def mc_file_name(campaign: str, tag: str, step: str, job: int, ext: str = "root") -> str:
    name = f"mc.{campaign}.{tag}.{step}.{job:06d}.{ext}"
    parse("mc", name, collection=False)
    return name


# Transfer activities: Rucio's own plus JUNO's. The schema admits exactly these on rules.
JUNO_ACTIVITIES = ("Raw Export", "Tape Archival", "Production Output", "User Analysis", "Calibration")
