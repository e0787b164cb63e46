"""The grid's watchdog: a supervisord event listener that brings back programs the supervisor gave up on.

supervisord retries a program that dies while starting a few times (1, 2, 3 ... s apart) and then marks it
FATAL for good. A grid must outlive transient outages (PostgreSQL refusing connections, Kafka restarting): a
Rucio daemon that exits at once while its database is away would otherwise stay down until someone notices.
On every PROCESS_STATE_FATAL event the watchdog starts the program again after a delay that doubles per give-up
(5, 10, 20, 40 s) up to a cap of 60 s; a program that then stays RUNNING for two minutes starts again at 5 s.
It never stops a program and never restarts one stopped on purpose (STOPPED is not FATAL).

Run by the supervisor as `[eventlistener:watchdog]` (juno_dcs.grid.programs.watchdog_section): the event protocol
is on stdin/stdout, the log on stderr. The supervisor's XML-RPC URL, with its password, comes in the environment
(JUNO_DCS_SUPERVISOR_URL), never on the command line.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import xmlrpc.client
from dataclasses import dataclass, field
from typing import Any, cast

import click
from supervisor import childutils

from juno_dcs.clikit import EXIT_CODES_EPILOG, KitCommand
from juno_dcs.errors import ConfigError

logger = logging.getLogger("juno_dcs.watchdog")

FIRST_DELAY = 5.0
MAX_DELAY = 60.0
STABLE_AFTER = 120.0  # seconds RUNNING after which a program's backoff starts over


@dataclass
class Backoff:
    """Per program: how many give-ups in a row, and when it last reached RUNNING."""

    failures: dict[str, int] = field(default_factory=dict)
    running_since: dict[str, float] = field(default_factory=dict)

    def on_running(self, name: str, now: float) -> None:
        self.running_since[name] = now

    def on_fatal(self, name: str, now: float) -> float:
        """The delay before the next start of `name`, which the supervisor just gave up on."""
        since = self.running_since.pop(name, None)
        if since is not None and now - since >= STABLE_AFTER:
            self.failures[name] = 0
        count = self.failures.get(name, 0)
        self.failures[name] = count + 1
        return float(min(MAX_DELAY, FIRST_DELAY * 2.0**count))


def _start_later(url: str, name: str, delay: float) -> None:
    time.sleep(delay)
    try:
        with xmlrpc.client.ServerProxy(url) as proxy:
            info = cast(dict[str, Any], proxy.supervisor.getProcessInfo(name))
            if info["statename"] != "FATAL":  # someone started or stopped it meanwhile
                return
            proxy.supervisor.startProcess(name, False)
        logger.warning("started %s again after %.0f s", name, delay)
    except (OSError, xmlrpc.client.Error) as exc:
        logger.error("could not start %s again: %s", name, exc)


@click.command("watchdog", cls=KitCommand, epilog=EXIT_CODES_EPILOG)
def main() -> None:
    """The supervisor's event listener that starts FATAL programs again (events on stdin and stdout)."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    url = os.environ.get("JUNO_DCS_SUPERVISOR_URL")
    if not url:
        raise ConfigError("JUNO_DCS_SUPERVISOR_URL is not set")
    backoff = Backoff()
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        event = headers.get("eventname", "")
        fields, _ = childutils.eventdata(payload + "\n")
        name = fields.get("processname", "")
        group = fields.get("groupname", name)
        target = name if group == name else f"{group}:{name}"
        now = time.monotonic()
        if event == "PROCESS_STATE_RUNNING":
            backoff.on_running(target, now)
        elif event == "PROCESS_STATE_FATAL" and target:
            delay = backoff.on_fatal(target, now)
            logger.warning("%s is FATAL (the supervisor gave up on it): starting it again in %.0f s", target, delay)
            threading.Thread(target=_start_later, args=(url, target, delay), daemon=True).start()
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main(prog_name="python -m juno_dcs.grid.watchdog")
