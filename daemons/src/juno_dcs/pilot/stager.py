"""Stage-in and stage-out with Rucio, as the job's owner (like PanDA using the user's credentials).

    StageError                   a file could not be moved or registered (the pilot maps it to 1099 or 1137)
    ├── StageInError
    └── StageOutError

The owner's client configuration is `<rucio_configs>/<owner>.cfg`, given to Rucio the way Rucio finds its
configuration (RUCIO_CONFIG). Rucio caches its configuration per process, so the pilot (one job at a time) points
RUCIO_CONFIG at the owner's file and drops the cache before it makes the job's client.

The storage elements take the owner's token (docs/security.md, "Storage elements"): stage-in reads and stage-out
writes with the identity the job runs as, production's for a production and the user's for a user task, so the
outputs land only where the owner may write. The owner's token client is `<rucio_configs>/<owner>.token.yaml`
(a ClientAuth: the issuer and the path of the 0600 secret file, never the secret), written by `juno-dcs up`
beside the owner's Rucio configuration; Rucio's upload and download clients hand the token to gfal2 (and, over
root://, into the URL: juno_rucio_policy.gfal_tokens).

Every write is safe to replay: an output already registered with a replica is kept as it is (a retried attempt
or a pilot that died after its upload), a dataset that exists is used, an attachment that exists is fine.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

from juno_dcs.clikit import use_rucio_config
from juno_dcs.errors import JunoDcsError
from juno_dcs.tokens.config import ClientAuth
from juno_dcs.tokens.fetch import TokenSource
from juno_dcs.tokens.storage import STORAGE_AUDIENCE, redact
from juno_dcs.wms.models import OutputFile
from juno_dcs.yamlconfig import load_model

logger = logging.getLogger(__name__)

FAR = 1_000_000  # the distance of an RSE pair that Rucio has no distance for


class StageError(JunoDcsError):
    """A file could not be staged; `transient` when retrying later may help."""


class StageInError(StageError):
    pass


class StageOutError(StageError):
    pass


def adler32_of(path: Path) -> str:
    value = 1
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            value = zlib.adler32(chunk, value)
    return f"{value & 0xFFFFFFFF:08x}"


def _split(did: str) -> tuple[str, str]:
    scope, sep, name = did.partition(":")
    if not sep or not scope or not name:
        raise StageError(f"{did!r} is not a DID (scope:name)")
    return scope, name


def _rucio_logger(name: str) -> Any:
    """Rucio's clients take a `logger(level, msg, *args)` callable or a Logger; its chatter goes at DEBUG less
    the lines that say what happened."""
    return logging.getLogger(f"juno_dcs.pilot.rucio.{name}")


def token_client_file(config_file: Path) -> Path:
    """The owner's token client beside its Rucio configuration: <account>.cfg -> <account>.token.yaml."""
    return config_file.with_suffix(".token.yaml")


def _owner_tokens(path: Path) -> TokenSource | None:
    if not path.is_file():
        return None  # a grid without tokens: the storage gets none
    try:
        return load_model(path, ClientAuth, "token client", StageError).source()
    except JunoDcsError as exc:
        raise StageError(f"the owner's token client {path}: {exc}") from exc


def _problem(exc: Exception) -> str:
    return redact(" ".join(str(exc).split()))


class RucioStager:
    """Downloads a job's inputs and uploads its outputs with the owner's Rucio client."""

    def __init__(self, config_file: Path, *, tape_rses: frozenset[str] | None = None,
                 scheme: str | None = None) -> None:
        if not config_file.is_file():
            raise StageError(f"no Rucio client configuration {config_file} for this job's owner")
        use_rucio_config(config_file)  # before Rucio's imports: some read it at import
        from rucio.common.config import clean_cached_config

        clean_cached_config()
        from rucio.client import Client

        try:
            self.client = Client()
        except Exception as exc:  # authentication and connection errors of every kind
            raise StageError(f"cannot make a Rucio client from {config_file}: {' '.join(str(exc).split())}",
                             ) from exc
        self.config_file = config_file
        self._tokens = _owner_tokens(token_client_file(config_file))
        self.scheme = scheme  # None: Rucio's protocol order (davs first in the grid); e.g. "root" to force it
        self.account = str(self.client.account)
        self._tapes = tape_rses
        self._distances: dict[tuple[str, str], int] = {}

    def _storage_token(self) -> str | None:
        """The owner's token for the storage elements (every scope of its role), fetched or refreshed as needed."""
        if self._tokens is None:
            return None
        try:
            return self._tokens.get(STORAGE_AUDIENCE).value
        except JunoDcsError as exc:
            raise StageError(f"no storage token for {self.account}: {exc}") from exc

    # --- stage-in
    def _tape_rses(self) -> frozenset[str]:
        if self._tapes is None:
            self._tapes = frozenset(r["rse"] for r in self.client.list_rses(rse_expression="rse_type=TAPE"))
        return self._tapes

    def distance(self, source: str, destination: str) -> int:
        if source == destination:
            return 0
        key = (source, destination)
        if key not in self._distances:
            rows = self.client.get_distance(source, destination)
            self._distances[key] = int(rows[0]["distance"]) if rows else FAR
        return self._distances[key]

    def sources(self, did: str, near: str) -> list[str]:
        """The disk RSEs with an available replica of `did`, the closest to `near` first."""
        scope, name = _split(did)
        replicas = list(self.client.list_replicas([{"scope": scope, "name": name}], sort="random"))
        if not replicas:
            raise StageInError(f"{did}: no such file in Rucio")
        states = replicas[0].get("states") or {}
        rses = [rse for rse, state in states.items() if state == "AVAILABLE" and rse not in self._tape_rses()]
        if not rses:
            raise StageInError(f"{did}: no available replica on disk (replicas: {states or 'none'})")
        return sorted(rses, key=lambda rse: (self.distance(rse, near), rse))

    def stage_in(self, did: str, destination: Path, near: str) -> Path:
        """Download `did` into `destination` from the closest replica to `near`, the next one if that fails."""
        from rucio.client.downloadclient import DownloadClient
        from rucio.common.exception import RucioException

        scope, name = _split(did)
        try:
            candidates = self.sources(did, near)
        except RucioException as exc:
            raise StageInError(f"{did}: cannot list its replicas: {' '.join(str(exc).split())}") from exc
        downloader = DownloadClient(client=self.client, logger=_rucio_logger("download"))
        downloader.auth_token = self._storage_token()  # Rucio's own token is not a JWT here: give it the owner's
        problems: list[str] = []
        for rse in candidates:
            logger.info("stage-in %s from %s (distance %d to %s)", did, rse, self.distance(rse, near), near)
            try:
                downloader.download_dids([{"did": did, "rse": rse, "base_dir": str(destination), "no_subdir": True,
                                           "force_scheme": self.scheme}])
            except RucioException as exc:
                problems.append(f"{rse}: {_problem(exc)}")
                logger.warning("stage-in %s from %s failed: %s", did, rse, problems[-1])
                continue
            path = destination / name
            if path.is_file():
                logger.info("stage-in %s done: %d bytes", did, path.stat().st_size)
                return path
            problems.append(f"{rse}: downloaded, but {path} is not there")
        raise StageInError(f"{scope}:{name}: could not be downloaded from any replica ({'; '.join(problems)})")

    # --- stage-out
    def ensure_dataset(self, dataset: str, rse: str) -> None:
        """The dataset exists (whoever submitted the task makes it; if not, it is made here with a rule at
        `rse`, as Rucio's upload does)."""
        from rucio.common.exception import DataIdentifierAlreadyExists

        scope, name = _split(dataset)
        try:
            self.client.add_dataset(scope=scope, name=name, rules=[
                {"account": self.account, "copies": 1, "rse_expression": rse, "grouping": "DATASET"}])
            logger.info("created the dataset %s with a rule at %s", dataset, rse)
        except DataIdentifierAlreadyExists:
            pass

    def attach(self, dataset: str, scope: str, name: str) -> None:
        from rucio.common.exception import FileAlreadyExists

        ds_scope, ds_name = _split(dataset)
        try:
            self.client.attach_dids(ds_scope, ds_name, [{"scope": scope, "name": name}])
            logger.info("attached %s:%s to %s", scope, name, dataset)
        except FileAlreadyExists:
            logger.info("%s:%s is already in %s", scope, name, dataset)

    def _registered(self, scope: str, name: str) -> tuple[dict[str, Any], list[str]] | None:
        """The file's metadata and the RSEs with an available replica, if the DID exists."""
        from rucio.common.exception import DataIdentifierNotFound

        try:
            meta = dict(self.client.get_metadata(scope, name))
        except DataIdentifierNotFound:
            return None
        replicas = list(self.client.list_replicas([{"scope": scope, "name": name}], sort="random"))
        states = (replicas[0].get("states") or {}) if replicas else {}
        return meta, [rse for rse, state in states.items() if state == "AVAILABLE"]

    def stage_out(self, path: Path, scope: str, name: str, dataset: str, rse: str) -> OutputFile:
        """Upload `path` as `scope:name` to `rse`, register it and attach it to `dataset`."""
        from rucio.common.exception import RucioException

        try:
            return self._stage_out(path, scope, name, dataset, rse)
        except RucioException as exc:
            raise StageOutError(f"{scope}:{name} to {rse}: {_problem(exc)}") from None

    def _stage_out(self, path: Path, scope: str, name: str, dataset: str, rse: str) -> OutputFile:
        from rucio.client.uploadclient import UploadClient

        if not path.is_file():
            raise StageOutError(f"{scope}:{name}: the payload did not write {path.name}")
        self.ensure_dataset(dataset, rse)
        found = self._registered(scope, name)
        if found is not None and found[1]:
            meta, rses = found
            where = rse if rse in rses else sorted(rses)[0]
            logger.info("stage-out %s:%s: already registered with a replica at %s (an earlier attempt); kept as it "
                        "is", scope, name, ", ".join(sorted(rses)))
            self.attach(dataset, scope, name)
            return OutputFile(scope=scope, name=name, bytes=int(meta["bytes"]), adler32=str(meta["adler32"]),
                              rse=where)
        size, checksum = path.stat().st_size, adler32_of(path)
        ds_scope, ds_name = _split(dataset)
        logger.info("stage-out %s:%s (%d bytes, adler32 %s) to %s", scope, name, size, checksum, rse)
        uploader = UploadClient(_client=self.client, logger=_rucio_logger("upload"))
        uploader.auth_token = self._storage_token()
        uploader.upload([{"path": str(path), "rse": rse, "did_scope": scope, "did_name": name,
                          "dataset_scope": ds_scope, "dataset_name": ds_name, "register_after_upload": True,
                          "force_scheme": self.scheme}])
        self.attach(dataset, scope, name)  # the upload attaches too, but says nothing when that fails
        logger.info("stage-out %s:%s done", scope, name)
        return OutputFile(scope=scope, name=name, bytes=size, adler32=checksum, rse=rse)
