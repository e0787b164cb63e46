"""Fill a grid's Rucio catalogue in the shape of benchmarks/scale_shape.py, through Rucio's own core code.

Run in a process of its own with the grid's server configuration (RUCIO_CONFIG = <home>/etc/rucio.cfg), so it talks
to the catalogue database as the Rucio server does: one transaction per unit of 10,000 files, in it
rucio.core.did.add_dids of every dataset with its files and their replicas at the RSE (Rucio's bulk route: the
files, replicas and attachments of a dataset in three bulk statements), the MC containers and their attachments,
then every dataset closed (rucio.core.did.set_status). No bytes are written; no rules are made.

    RUCIO_CONFIG=<home>/etc/rucio.cfg python benchmarks/scale_fill.py --from 0 --to 50000 [--worker 0 --workers 2]
                                                                      [--copy]

With --copy, the units are written by benchmarks/scale_load.py as copies of unit 0's rows (unit 0 must be there,
registered by this script without --copy); many times faster, the same rows.

Prints one line per unit on stdout: {"unit": u, "files": 10000, "added": false when it was there, "s": seconds}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.scale_shape import UNIT_FILES, DatasetSpec, big_dataset, new_block, unit, units_between

ACCOUNTS = {"raw": "rawdata", "mc": "production"}
CHUNK = 1000  # files per add_replicas call: Rucio checks a call's existing replicas with one OR term per file, and
# PostgreSQL's planning time grows faster than linearly in the terms (0.6 s for 1,000 on a busy machine, minutes for
# 10,000)


def _account(scope: str) -> str:
    return ACCOUNTS.get(scope, scope.removeprefix("user."))


def add_unit(u: int, user_scopes: tuple[str, ...], rse: str) -> bool:
    """Unit `u` in one transaction; False when it is already there (a fill that goes on)."""
    from rucio.common.exception import DataIdentifierNotFound
    from rucio.common.types import InternalScope
    from rucio.core.did import get_did

    datasets = unit(u, user_scopes)
    container = next(d.container for d in datasets if d.container is not None)
    try:
        get_did(InternalScope("mc"), container)
        return False
    except DataIdentifierNotFound:
        add_datasets(datasets, rse)
        return True


def add_datasets(datasets: list[DatasetSpec], rse: str) -> None:
    """`datasets` (their files with replicas at `rse`, their containers), closed, in one transaction."""
    from rucio.common.types import InternalAccount, InternalScope
    from rucio.core.did import add_dids, attach_dids, set_status
    from rucio.core.rse import get_rse_id
    from rucio.db.sqla.constants import DIDType
    from rucio.db.sqla.session import transactional_session

    rse_id = get_rse_id(rse)

    def files(d: DatasetSpec) -> list[dict[str, Any]]:
        return [{"scope": InternalScope(d.scope), "name": f.name, "bytes": f.bytes, "adler32": f.adler32}
                for f in d.files]

    @transactional_session
    def work(*, session: Any = None) -> None:
        by_account: dict[str, list[dict[str, Any]]] = {}
        for d in datasets:
            by_account.setdefault(_account(d.scope), []).append(
                {"scope": InternalScope(d.scope), "name": d.name, "type": DIDType.DATASET, "meta": dict(d.meta),
                 "dids": files(d)[:CHUNK], "rse_id": rse_id})
        for account, dids in by_account.items():
            add_dids(dids, InternalAccount(account), session=session)
        for d in datasets:  # a bigger dataset's other files, CHUNK at a time
            rest = files(d)[CHUNK:]
            for i in range(0, len(rest), CHUNK):
                attach_dids(InternalScope(d.scope), d.name, rest[i:i + CHUNK], InternalAccount(_account(d.scope)),
                            rse_id=rse_id, session=session)
        containers: dict[str, list[DatasetSpec]] = {}
        for d in datasets:
            if d.container is not None:
                containers.setdefault(d.container, []).append(d)
        for name, members in containers.items():
            scope = InternalScope(members[0].scope)
            add_dids([{"scope": scope, "name": name, "type": DIDType.CONTAINER}],
                     InternalAccount(_account(members[0].scope)), session=session)
            attach_dids(scope, name, [{"scope": scope, "name": m.name} for m in members],
                        InternalAccount(_account(members[0].scope)), session=session)
        for d in datasets:
            set_status(InternalScope(d.scope), d.name, open=False, session=session)

    work()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="files_from", type=int, default=0)
    parser.add_argument("--to", dest="files_to", type=int, default=0)
    parser.add_argument("--user-scopes", default="user.alice,user.bob")
    parser.add_argument("--rse", default="IHEP_DISK")
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--new-block", metavar="STREAM", help="Only a new raw block of this stream.")
    parser.add_argument("--big-dataset", metavar="TAG", help="Only one MC dataset of --big-files files.")
    parser.add_argument("--big-files", type=int, default=10_000)
    parser.add_argument("--copy", action="store_true",
                        help="Copy the template unit's rows by COPY (benchmarks/scale_load.py); it must be there.")
    args = parser.parse_args()
    scopes = tuple(args.user_scopes.split(","))
    if args.new_block or args.big_dataset:
        add_datasets([new_block(args.new_block)] if args.new_block else
                     [big_dataset(args.big_dataset, args.big_files)], args.rse)
        return 0
    mine = [u for u in units_between(args.files_from, args.files_to) if u % args.workers == args.worker]
    if args.copy:
        from benchmarks.scale_load import TEMPLATE_UNIT, load_units

        start = time.perf_counter()
        for u, added in load_units([u for u in mine if u != TEMPLATE_UNIT], scopes, args.rse, _account):
            print(json.dumps({"unit": u, "files": UNIT_FILES, "added": added,
                              "s": round(time.perf_counter() - start, 3)}), flush=True)
            start = time.perf_counter()
        return 0
    for u in mine:
        start = time.perf_counter()
        added = add_unit(u, scopes, args.rse)
        print(json.dumps({"unit": u, "files": UNIT_FILES, "added": added, "s": round(time.perf_counter() - start, 3)}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
