"""The job's heartbeat thread: tells the dispatcher the job's state, renews its lease, hears kill commands.

A "kill" command sets `kill`; an answer 409 (the job is no longer this pilot's: its lease ran out and it was
requeued, or it was cancelled) sets `lost` and `kill`, so the payload stops and the pilot reports nothing more.
Transient errors (dispatcher down) are logged and tried again at the next beat; the lease is long enough for a few.
"""

from __future__ import annotations

import logging
import threading

from juno_dcs.wms.client import WmsClient, WmsError
from juno_dcs.wms.models import PilotState

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, client: WmsClient, job_id: int, pilot_id: str, interval_s: float) -> None:
        self.client = client
        self.job_id = job_id
        self.pilot_id = pilot_id
        self.interval_s = interval_s
        self.kill = threading.Event()
        self.lost = threading.Event()
        self._state: PilotState = "starting"
        self._wake = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    @property
    def state(self) -> PilotState:
        return self._state

    def start(self) -> None:
        self._thread.start()

    def set_state(self, state: PilotState) -> None:
        """Change the reported state; the dispatcher hears it at once."""
        with self._lock:
            changed = state != self._state
            self._state = state
        if changed:
            logger.info("job %d: %s", self.job_id, state)
            self._wake.set()

    def beat(self) -> None:
        """One heartbeat now (the thread calls this; tests may too)."""
        if self.lost.is_set():
            return
        try:
            command = self.client.heartbeat(self.job_id, self.pilot_id, self._state)
        except WmsError as exc:
            if exc.status == 409:
                logger.error("job %d is no longer this pilot's (%s): stopping it", self.job_id, exc.detail)
                self.lost.set()
                self.kill.set()
            else:
                logger.warning("heartbeat of job %d failed (%s); trying again in %.0f s", self.job_id, exc,
                               self.interval_s)
            return
        if command == "kill" and not self.kill.is_set():
            logger.warning("job %d: the dispatcher says kill", self.job_id)
            self.kill.set()

    def _run(self) -> None:
        while not self._done.is_set():
            self.beat()
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def stop(self) -> None:
        self._done.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.client.timeout + 5)
