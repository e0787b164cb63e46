"""The pilot's loop: getJob -> run the job -> the next one, until the lifetime ends or there is no work."""

from __future__ import annotations

import logging
import threading
import time

from juno_dcs.pilot.job import PilotSettings, Stager, StagerFactory, run_job
from juno_dcs.wms.client import WmsClient, WmsError

logger = logging.getLogger(__name__)

MIN_WALLTIME_S = 10  # a pilot with less time left than this asks for no more jobs


def rucio_stager(settings: PilotSettings, owner: str) -> Stager:
    """The owner's Rucio stager: `<rucio_configs>/<owner>.cfg`."""
    from juno_dcs.pilot.stager import RucioStager

    return RucioStager(settings.owner_config(owner), scheme=settings.stage_scheme)


class Pilot:
    def __init__(self, settings: PilotSettings, client: WmsClient, stop: threading.Event,
                 stagers: StagerFactory = rucio_stager) -> None:
        self.settings = settings
        self.client = client
        self.stop = stop
        self.stagers = stagers
        self.jobs_run = 0

    def run(self) -> int:
        """Run jobs until the lifetime ends, getJob answers no work, or SIGTERM; 0, or 1 when the dispatcher
        refuses the pilot itself (4xx to getJob)."""
        s = self.settings
        start = time.monotonic()
        logger.info("pilot %s at %s/%s: %d cores, %d MB, walltime %d s, lifetime %.0f s, dispatcher %s",
                    s.pilot_id, s.site, s.queue, s.cores, s.memory_mb, s.walltime_s, s.lifetime_s, s.dispatcher)
        delay = 2.0
        while not self.stop.is_set():
            remaining = s.lifetime_s - (time.monotonic() - start)
            walltime = int(min(s.walltime_s, remaining))
            if walltime < MIN_WALLTIME_S:
                logger.info("pilot %s: lifetime over (%.0f s left) after %d jobs", s.pilot_id, remaining,
                            self.jobs_run)
                return 0
            try:
                job = self.client.get_job(s.pilot_id, s.site, s.queue, s.cores, s.memory_mb, walltime)
            except WmsError as exc:
                if not exc.transient:
                    logger.error("pilot %s: getJob refused: %s", s.pilot_id, exc)
                    return 1
                logger.warning("pilot %s: getJob failed (%s); trying again in %.0f s", s.pilot_id, exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 60.0)
                continue
            delay = 2.0
            if job is None:
                logger.info("pilot %s: no work for %s; exiting after %d jobs", s.pilot_id, s.queue, self.jobs_run)
                return 0
            run_job(job, s, self.client, self.stagers, self.stop)
            self.jobs_run += 1
            if s.run_once:
                break
        logger.info("pilot %s: stopping after %d jobs", s.pilot_id, self.jobs_run)
        return 0
