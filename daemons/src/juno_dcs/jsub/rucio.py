"""jsub's Rucio operations, through the user's own client configuration (RUCIO_CONFIG or --rucio-config).

Rucio reads its configuration once per process, so `jsub` sets RUCIO_CONFIG (juno_dcs.clikit.use_rucio_config)
before the first import of rucio.client; the functions below take the client as a parameter (tests pass their own).
"""

from __future__ import annotations

import configparser
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from juno_dcs.jsub.errors import DataError

logger = logging.getLogger(__name__)
Client = Any  # rucio.client.Client (untyped)


def config_account(path: Path | None = None) -> str | None:
    """The account named in the Rucio client configuration (without contacting Rucio), or None."""
    source = path or (Path(os.environ["RUCIO_CONFIG"]) if os.environ.get("RUCIO_CONFIG") else None)
    if source is None or not source.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(source)
    except configparser.Error:
        return None
    return parser.get("client", "account", fallback=None)


def client() -> Client:
    if not os.environ.get("RUCIO_CONFIG") and not Path("/opt/rucio/etc/rucio.cfg").exists():
        raise DataError("no Rucio client configuration: set RUCIO_CONFIG or give --rucio-config")
    from rucio.client import Client as RucioClient
    from rucio.common.exception import RucioException

    try:
        return RucioClient()
    except RucioException as exc:
        raise DataError(f"cannot make a Rucio client ({os.environ.get('RUCIO_CONFIG')}): {exc}") from exc


def split_did(did: str, default_scope: str | None = None) -> tuple[str, str]:
    scope, sep, name = did.partition(":")
    if not sep:
        if default_scope is None:
            raise DataError(f"{did!r}: give scope:name")
        return default_scope, did
    return scope, name


def _errors() -> tuple[type[Exception], ...]:
    from rucio.common.exception import RucioException

    return (RucioException,)


def list_files(rucio: Client, did: str) -> list[dict[str, Any]]:
    """The files of a dataset (or container), sorted by name."""
    scope, name = split_did(did)
    try:
        files = list(rucio.list_files(scope, name))
    except _errors() as exc:
        raise DataError(f"cannot list the files of {did}: {exc}") from exc
    return sorted(files, key=lambda f: (f["scope"], f["name"]))


def file_dids(rucio: Client, did: str) -> list[str]:
    return [f"{f['scope']}:{f['name']}" for f in list_files(rucio, did)]


def create_dataset(rucio: Client, scope: str, name: str, rse: str | None = None, lifetime: int | None = None) -> bool:
    """Create scope:name (True), or find it existing (False); with `rse`, one rule keeps a copy there."""
    from rucio.common.exception import DataIdentifierAlreadyExists

    created = True
    try:
        rucio.add_dataset(scope, name, lifetime=lifetime)
    except DataIdentifierAlreadyExists:
        created = False
    except _errors() as exc:
        raise DataError(f"cannot create the dataset {scope}:{name}: {exc}") from exc
    if rse:
        from rucio.common.exception import DuplicateRule

        try:
            rucio.add_replication_rule([{"scope": scope, "name": name}], 1, rse)
        except DuplicateRule:
            pass
        except _errors() as exc:
            raise DataError(f"cannot add a rule for {scope}:{name} on {rse}: {exc}") from exc
    return created


def attach(rucio: Client, dataset: str, files: Sequence[str]) -> int:
    """Attach existing files to the dataset; how many (files already in it are skipped)."""
    scope, name = split_did(dataset)
    present = {f"{f['scope']}:{f['name']}" for f in list_files(rucio, dataset)}
    new = [f for f in dict.fromkeys(files) if f not in present]
    if not new:
        return 0
    dids = [dict(zip(("scope", "name"), split_did(f, scope), strict=True)) for f in new]
    try:
        rucio.attach_dids(scope, name, dids)
    except _errors() as exc:
        raise DataError(f"cannot attach {len(dids)} file(s) to {dataset}: {exc}") from exc
    return len(dids)


def delete_dataset(rucio: Client, dataset: str) -> list[str]:
    """Erase a dataset the way a user can: remove the account's rules on it (their replicas become
    deletable) and give the DID a lifetime of one second, so Rucio's undertaker erases it. What was done."""
    scope, name = split_did(dataset)
    done = []
    try:
        rules = list(rucio.list_did_rules(scope, name))
    except _errors() as exc:
        raise DataError(f"cannot list the rules of {dataset}: {exc}") from exc
    for rule in rules:
        if rule.get("account") != rucio.account:
            done.append(f"rule {rule['id']} of {rule.get('account')} kept (not yours)")
            continue
        try:
            rucio.delete_replication_rule(rule["id"], purge_replicas=True)
        except _errors() as exc:
            raise DataError(f"cannot remove rule {rule['id']} of {dataset}: {exc}") from exc
        done.append(f"rule {rule['id']} on {rule.get('rse_expression')} removed")
    try:
        rucio.set_metadata(scope, name, "lifetime", 1)
    except _errors() as exc:
        raise DataError(f"cannot set the lifetime of {dataset} (the undertaker erases expired DIDs): {exc}") from exc
    done.append(f"{dataset} expires now: Rucio's undertaker erases it")
    return done


def download(rucio: Client, dids: Sequence[str], dest: Path) -> list[Path]:
    """Download files into `dest`, each named by its name; their paths."""
    from rucio.client.downloadclient import DownloadClient

    dest.mkdir(parents=True, exist_ok=True)
    items = [{"did": d, "base_dir": str(dest), "no_subdir": True} for d in dids]
    try:
        DownloadClient(client=rucio, logger=logger).download_dids(items)
    except _errors() as exc:
        raise DataError(f"cannot download {', '.join(dids)}: {exc}") from exc
    paths = [dest / split_did(d)[1] for d in dids]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise DataError(f"download reported success but {missing} are missing")
    return paths


def stage_in_from_config() -> Any:
    """A stage-in function for the local backend, or None without a Rucio configuration."""
    if not os.environ.get("RUCIO_CONFIG"):
        return None

    def stage_in(dids: Sequence[str], directory: Path) -> None:
        rucio = client()
        tmp = directory / ".stagein"
        for path in download(rucio, dids, tmp):
            shutil.move(str(path), directory / path.name)
        shutil.rmtree(tmp, ignore_errors=True)

    return stage_in
