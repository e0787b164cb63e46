"""The dispatcher's Python client (docs/wms.md), used by the pilot, the production manager and jsub.

    WmsError          the server answered 4xx/5xx (status, detail), or could not be reached (status 0)

Every call carries `Authorization: Bearer <token>` from the client's token provider (juno_dcs.wms.credentials),
asked for each call (providers keep their tokens and refresh them). A client without one sends no token (a
dispatcher with token checks off).
`transient` is true for 5xx and for connection problems (the token issuer's too): retrying may help; a 4xx will
answer the same again. A token provider's other errors pass through: no token found (ConfigError), the issuer
refusing the client (PermissionDenied).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode
from urllib.request import getproxies, proxy_bypass

import urllib3

from juno_dcs.errors import JunoDcsError, ServiceError
from juno_dcs.wms.models import FinishReport, JobDescription, JobSpec


class WmsError(JunoDcsError):
    """An error answer of the dispatcher (status 4xx/5xx with its detail), or status 0: not reachable."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"dispatcher answered {status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return self.status == 0 or self.status >= 500


def _pool_manager(url: str) -> urllib3.PoolManager:
    """Keep-alive connections (thread-safe) to the dispatcher, through the environment's proxy if it names one
    for this URL and with its CA bundle ($REQUESTS_CA_BUNDLE or $CURL_CA_BUNDLE), both read once here."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    tls: dict[str, Any] = {"ca_certs": bundle} if bundle else {}
    target = urllib3.util.parse_url(url)
    proxies = getproxies()
    if target.scheme in proxies and not proxy_bypass(target.host or ""):
        return urllib3.ProxyManager(proxies[target.scheme], maxsize=64, **tls)
    return urllib3.PoolManager(maxsize=64, **tls)


class WmsClient:
    """Thread-safe: one client may serve many threads (each call takes a pooled connection)."""

    def __init__(self, url: str, timeout: float = 30.0, token: Callable[[], str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._timeout = urllib3.Timeout(total=timeout)  # made once: _call is the pilots' hot path
        # urllib3 rather than requests: a pilot asks often, and requests' per-call work (environment, netrc,
        # hooks) cost more CPU than the dispatcher's answer (benchmarks/wms.py)
        self._http = _pool_manager(self.url)

    def close(self) -> None:
        """Close the pooled connections (the client stays usable: a later call opens new ones)."""
        self._http.clear()  # type: ignore[no-untyped-call]  # (untyped in types-urllib3 1.26)

    def __enter__(self) -> WmsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # a client dropped without close() must not leave its keep-alive sockets to the garbage collector
        http = getattr(self, "_http", None)
        if http is not None:
            http.clear()

    # --- plumbing
    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        url = self.url + path + (f"?{urlencode(params, doseq=True)}" if params else "")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token is not None:
            try:
                headers["Authorization"] = f"Bearer {self.token()}"
            except ServiceError as exc:  # the issuer out of reach: as transient as the dispatcher out of reach
                raise WmsError(0, f"cannot get a token for the dispatcher: {exc}") from exc
        try:
            resp = self._http.urlopen(method, url, body=None if body is None else json.dumps(body).encode(),
                                      headers=headers or None,
                                      timeout=self._timeout,
                                      retries=False)  # type: ignore[no-untyped-call]  # (untyped in types-urllib3 1.26)
        except urllib3.exceptions.HTTPError as exc:
            raise WmsError(0, f"cannot reach the dispatcher at {self.url}: {exc}") from exc
        text = resp.data.decode("utf-8", "replace")
        if resp.status >= 400:
            try:
                detail = str(json.loads(text).get("detail", text))
            except (ValueError, AttributeError):
                detail = text
            raise WmsError(resp.status, detail)
        if resp.status == 204 or not resp.data:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise WmsError(resp.status, f"the dispatcher's answer is not JSON: {text[:200]!r}") from exc

    @staticmethod
    def _jobs(jobs: Sequence[JobSpec]) -> list[dict[str, Any]]:
        return [j.model_dump(mode="json") for j in jobs]

    # --- tasks
    def submit_task(self, name: str, kind: str, owner: str | None, jobs: Sequence[JobSpec],
                    priority: int = 0) -> tuple[int, list[int]]:
        """`owner` None: the token's subject (a dispatcher checking tokens refuses any other owner)."""
        body: dict[str, Any] = {"name": name, "kind": kind, "priority": priority, "jobs": self._jobs(jobs)}
        if owner is not None:
            body["owner"] = owner
        out = self._call("POST", "/v1/tasks", body)
        return int(out["task_id"]), [int(i) for i in out["job_ids"]]

    def add_jobs(self, task_id: int, jobs: Sequence[JobSpec]) -> list[int]:
        out = self._call("POST", f"/v1/tasks/{task_id}/jobs", {"jobs": self._jobs(jobs)})
        return [int(i) for i in out["job_ids"]]

    def tasks(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/tasks"))

    def task(self, task_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/tasks/{task_id}"))

    def kill_task(self, task_id: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/tasks/{task_id}/kill"))

    # --- jobs
    def jobs(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        return list(self._call("GET", "/v1/jobs", params=params))

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/jobs/{job_id}"))

    def kill_job(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/jobs/{job_id}/kill"))

    def reassign_job(self, job_id: int, site: str | None = None) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/jobs/{job_id}/reassign", {"site": site}))

    def retry_job(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/jobs/{job_id}/retry"))

    # --- pilots
    def get_job(self, pilot_id: str, site: str, queue: str, cores: int, memory_mb: int,
                walltime_s: int) -> JobDescription | None:
        out = self._call("POST", "/v1/pilot/getjob", {"pilot_id": pilot_id, "site": site, "queue": queue,
                                                      "cores": cores, "memory_mb": memory_mb,
                                                      "walltime_s": walltime_s})
        return None if out is None else JobDescription.model_validate(out["job"])

    def heartbeat(self, job_id: int, pilot_id: str, state: str) -> str:
        out = self._call("POST", f"/v1/pilot/jobs/{job_id}/heartbeat", {"pilot_id": pilot_id, "state": state})
        return str(out["command"])

    def finish(self, job_id: int, pilot_id: str, report: FinishReport) -> dict[str, Any]:
        body = {**report.model_dump(mode="json"), "pilot_id": pilot_id}
        return dict(self._call("POST", f"/v1/pilot/jobs/{job_id}/finish", body))

    # --- queues and service
    def queues(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/queues"))

    def pilots(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/pilots"))

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/health"))
