"""Rucio's events wake the production manager: hermes sends them to the grid's broker (STOMP), and a RULE_OK of
an intermediate step's dataset means a new file of it is where its rule wants it, so its next-step job is due.

    events:                                   # prod.yaml; None: passes every `sleep` seconds, as before
      url: stomp://127.0.0.1:23002            # the broker hermes sends to
      destination: /topic/rucio.events        # rucio.cfg [messaging-hermes] destination
      username: events                        # an account that may only read that topic
      password_file: /home/secrets/activemq-events   # 0600
    reconcile: 60                             # a full pass at least this often, events or none

`Wakeup` collects the datasets named by the events since the daemon last looked; `Listener` feeds it from the
broker and connects again, from the daemon's idle time, when the broker went away. A message that cannot be read
(not JSON, no event type, no payload name) is logged with what is wrong and skipped: the next full pass
(`reconcile`) finds whatever it would have announced, so a lost or bad message delays a job, never loses it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import stomp
import stomp.exception
from pydantic import BaseModel, ConfigDict, Field, field_validator

from juno_dcs.errors import ConfigError

logger = logging.getLogger(__name__)

# The events that say a dataset has new files at a rule's RSE (rucio/core/rule.py generate_rule_notifications)
WAKE_EVENTS = frozenset({"rule_ok", "rule_progress", "datasetlock_ok"})


class EventsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="The broker hermes sends to: stomp://HOST:PORT.")
    destination: str = Field(default="/topic/rucio.events", description="hermes's destination (rucio.cfg).")
    username: str = Field(description="The broker account; it needs only to read `destination`.")
    password_file: Path = Field(description="Its password, in a file only the daemon's user can read.")
    heartbeat_s: float = Field(default=10.0, gt=0, description="STOMP heart-beats both ways; a broker silent "
                               "for three of them counts as gone (the socket's timeout).")
    retry_s: float = Field(default=10.0, gt=0, description="Seconds between connection attempts while down.")

    @field_validator("url")
    @classmethod
    def _stomp_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "stomp" or not parts.hostname or not parts.port:
            raise ValueError(f"{url!r} is not stomp://HOST:PORT")
        return url

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "", parts.port or 0  # both present: checked by the validator

    def password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"events.password_file: cannot read {self.password_file}: {exc.strerror}") from None


class BadEvent(ValueError):
    """A broker message that is not a Rucio event."""


@dataclass(frozen=True)
class Event:
    event_type: str  # lower case, as hermes sends it
    scope: str
    name: str


def parse(body: str | bytes) -> Event:
    """The event in a hermes message body ({"event_type", "payload": {"scope", "name", ...}, "created_at"})."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadEvent(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadEvent(f"a JSON {type(data).__name__}, not an object")
    kind = data.get("event_type")
    if not isinstance(kind, str) or not kind:
        raise BadEvent("no event_type")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise BadEvent(f"{kind}: no payload object")
    scope, name = payload.get("scope"), payload.get("name")
    if not isinstance(scope, str) or not isinstance(name, str):
        raise BadEvent(f"{kind}: the payload has no scope and name")
    return Event(kind.lower(), scope, name)


class Wakeup:
    """The datasets named by wake events since the last `take`, and a wait that ends when there are some."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._dids: set[str] = set()
        self.received = 0  # wake events seen, for the logs and the tests

    def add(self, did: str) -> None:
        with self._cond:
            self._dids.add(did)
            self.received += 1
            self._cond.notify_all()

    def take(self) -> set[str]:
        with self._cond:
            dids, self._dids = self._dids, set()
            return dids

    def wait(self, seconds: float, stop: threading.Event, step: float = 0.5) -> bool:
        """Until a dataset is named, `stop` is set or `seconds` pass; whether a dataset was named."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._dids and not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(step, left))
            return bool(self._dids)


class Listener(stomp.ConnectionListener):  # type: ignore[misc]  # stomp.py is untyped
    """The broker subscription: every wake event of scope `scope` goes to `wakeup` as scope:name."""

    def __init__(self, config: EventsConfig, wakeup: Wakeup, scope: str) -> None:
        self.config = config
        self.wakeup = wakeup
        self.scope = scope
        self.skipped = 0  # messages that were not Rucio events
        self._conn: stomp.Connection12 | None = None
        self._next_attempt = 0.0
        self._down_logged = False

    # stomp.py calls these from its receiver thread
    def on_message(self, frame: stomp.utils.Frame) -> None:
        try:
            event = parse(frame.body)
        except BadEvent as exc:
            self.skipped += 1
            logger.warning("skipped a message on %s: %s", self.config.destination, exc)
            return
        if event.event_type in WAKE_EVENTS and event.scope == self.scope:
            logger.debug("%s of %s:%s", event.event_type, event.scope, event.name)
            self.wakeup.add(f"{event.scope}:{event.name}")

    def on_disconnected(self) -> None:
        if self._conn is not None:
            logger.warning("the broker at %s went away; the daemon connects again and passes every reconcile "
                           "interval meanwhile", self.config.url)

    @property
    def connected(self) -> bool:
        return self._conn is not None and bool(self._conn.is_connected())

    def ensure(self) -> bool:
        """Connect and subscribe if not connected and an attempt is due; whether connected."""
        if self.connected:
            return True
        now = time.monotonic()
        if now < self._next_attempt:
            return False
        self._next_attempt = now + self.config.retry_s
        beat_ms = int(self.config.heartbeat_s * 1000)
        # stomp.py's timeout is the socket's, for reads too: longer than the broker's heart-beats, so that only a
        # broker that stopped answering ends the connection
        conn = stomp.Connection12([self.config.host_port], timeout=3 * self.config.heartbeat_s,
                                  reconnect_attempts_max=1, heartbeats=(beat_ms, beat_ms))
        conn.set_listener("prodsys", self)
        try:
            conn.connect(self.config.username, self.config.password(), wait=True, with_connect_command=True)
            conn.subscribe(self.config.destination, id="prodsys", ack="auto")
        except (stomp.exception.StompException, OSError) as exc:
            if not self._down_logged:
                logger.warning("no events from %s (%s: %s); connecting again every %.0f s", self.config.url,
                               exc.__class__.__name__, exc, self.config.retry_s)
                self._down_logged = True
            self._close(conn)
            return False
        self._conn, self._down_logged = conn, False
        logger.info("listening to %s on %s", self.config.destination, self.config.url)
        return True

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._close(conn)

    @staticmethod
    def _close(conn: stomp.Connection12) -> None:
        try:
            if conn.is_connected():
                conn.disconnect()
        except (stomp.exception.StompException, OSError):
            pass
