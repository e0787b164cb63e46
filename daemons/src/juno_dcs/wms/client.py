"""The dispatcher's Python client (docs/wms.md), used by the pilot, the production manager and jsub.

    WmsError          the server answered 4xx/5xx (status, detail), or could not be reached (status 0)

`transient` is true for 5xx and for connection problems: retrying may help; a 4xx will answer the same again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import requests

from juno_dcs.errors import JunoDcsError
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


class WmsClient:
    def __init__(self, url: str, timeout: float = 30.0, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session if session is not None else requests.Session()
        if self.session.trust_env:
            # read the environment's proxies and CA bundle once: requests would otherwise look for them, and
            # for a ~/.netrc, on every call, which costs a pilot more CPU than the dispatcher's answer
            self.session.proxies.update(requests.utils.get_environ_proxies(self.url))
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle and self.session.verify is True:
                self.session.verify = bundle
            self.session.trust_env = False

    # --- plumbing
    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            resp = self.session.request(method, self.url + path, json=body, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise WmsError(0, f"cannot reach the dispatcher at {self.url}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                detail = str(resp.json().get("detail", resp.text))
            except ValueError:
                detail = resp.text
            raise WmsError(resp.status_code, detail)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    @staticmethod
    def _jobs(jobs: Sequence[JobSpec]) -> list[dict[str, Any]]:
        return [j.model_dump(mode="json") for j in jobs]

    # --- tasks
    def submit_task(self, name: str, kind: str, owner: str, jobs: Sequence[JobSpec],
                    priority: int = 0) -> tuple[int, list[int]]:
        out = self._call("POST", "/v1/tasks", {"name": name, "kind": kind, "owner": owner, "priority": priority,
                                               "jobs": self._jobs(jobs)})
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
