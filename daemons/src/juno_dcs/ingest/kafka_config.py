"""Kafka client settings, shared by the ingestor and the SPADE simulator.

The same code runs against the grid's Apache Kafka 0.9 and a site's modern broker: only these settings
change (bootstrap servers, the protocol version to speak, security). They are handed to kafka-python.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class KafkaSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: list[str] = Field(min_length=1, description="host:port of one or more brokers.")
    api_version: tuple[int, ...] | None = Field(
        default=None,
        description="Protocol version to speak, e.g. [0, 9] for the grid's Kafka 0.9 (it cannot be probed there); "
        "null asks the broker (modern brokers).",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    ssl_cafile: str | None = None
    client_id: str = "juno-dcs"
    request_timeout_ms: int = Field(default=40000, gt=0, description="Longer than max_poll_interval_ms: a JoinGroup "
                                    "may wait that long.")
    session_timeout_ms: int = Field(default=20000, ge=6000, le=30000, description="Consumer group session: a "
                                    "member silent this long is dropped (Kafka 0.9 accepts 6-30 s).")
    max_poll_interval_ms: int = Field(default=30000, gt=0, description="Longest time between polls before a "
                                      "member leaves its group (modern brokers; also their rebalance timeout).")

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port(cls, servers: list[str]) -> list[str]:
        for server in servers:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return servers

    def common(self) -> dict[str, Any]:
        """Keyword arguments every kafka-python client takes."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap_servers),
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.api_version is not None:
            kwargs["api_version"] = tuple(self.api_version)
        optional = {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_plain_username,
            "sasl_plain_password": self.sasl_plain_password,
            "ssl_cafile": self.ssl_cafile,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        return kwargs

    def producer(self, **extra: Any) -> Any:
        """A KafkaProducer with these settings (acks from every in-sync replica, retries on)."""
        from kafka import KafkaProducer

        return KafkaProducer(**self.common(), acks="all", retries=5, **extra)

    def consumer(self, *topics: str, group_id: str | None, **extra: Any) -> Any:
        """A KafkaConsumer with these settings; offsets are committed by the caller, never automatically."""
        from kafka import KafkaConsumer

        # before Kafka 0.10.1 a group has no separate poll interval: kafka-python wants it equal to the session
        old_protocol = self.api_version is not None and tuple(self.api_version) < (0, 10, 1)
        poll_interval = self.session_timeout_ms if old_protocol else self.max_poll_interval_ms
        return KafkaConsumer(*topics, **self.common(), group_id=group_id, enable_auto_commit=False,
                             auto_offset_reset="earliest", session_timeout_ms=self.session_timeout_ms,
                             heartbeat_interval_ms=self.session_timeout_ms // 3,
                             max_poll_interval_ms=poll_interval, **extra)
