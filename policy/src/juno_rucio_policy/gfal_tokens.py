"""Rucio's gfal protocol with the token also over root:// (the `impl` of the JUNO SEs' root protocol).

Rucio 41 hands a JWT to its gfal protocol (`auth_token`, from the client's own token when that is a JWT, or the
reaper's per-deletion token) and sets it as gfal2's `BEARER TOKEN`, which only gfal2's HTTP plugin sends. This
subclass also puts it into every root:// URL it hands to gfal2 (juno_rucio_policy.tokens), and takes it out of
the errors it raises. Everything else is Rucio's.
"""

from __future__ import annotations

from typing import Any

from rucio.common import exception
from rucio.rse.protocols import gfal

from juno_rucio_policy.tokens import redact, with_token


class Default(gfal.Default):  # type: ignore[misc]
    def _url(self, path: Any) -> Any:
        return with_token(path, self.auth_token) if isinstance(path, str) else path

    def _redacted(self, error: exception.RucioException) -> exception.RucioException:
        return type(error)(redact(str(error)))

    def get(self, path: str, dest: str, transfer_timeout: int | None = None) -> None:
        try:
            super().get(self._url(path), dest, transfer_timeout=transfer_timeout)
        except exception.RucioException as error:
            raise self._redacted(error) from None

    def put(self, source: str, target: str, source_dir: str | None, transfer_timeout: int | None = None) -> None:
        try:
            super().put(source, self._url(target), source_dir, transfer_timeout=transfer_timeout)
        except exception.RucioException as error:
            raise self._redacted(error) from None

    def delete(self, path: str | list[str]) -> None:
        urls = self._url(path) if isinstance(path, str) else [self._url(p) for p in path]
        try:
            super().delete(urls)
        except exception.RucioException as error:
            raise self._redacted(error) from None

    def rename(self, path: str, new_path: str) -> None:
        try:
            super().rename(self._url(path), self._url(new_path))
        except exception.RucioException as error:
            raise self._redacted(error) from None

    def exists(self, path: str) -> bool:
        try:
            return bool(super().exists(self._url(path)))
        except exception.RucioException as error:
            raise self._redacted(error) from None

    def stat(self, path: str) -> dict[str, Any]:
        try:
            return dict(super().stat(self._url(path)))
        except exception.RucioException as error:
            raise self._redacted(error) from None
