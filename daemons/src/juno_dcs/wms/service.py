"""Building the dispatcher's pieces from its configuration (once per process, in main or the ASGI module)."""

from __future__ import annotations

from juno_dcs.errors import ConfigError
from juno_dcs.packaged import data_file
from juno_dcs.tokens.config import IdentityCache
from juno_dcs.topology import TopologyError, load_topology
from juno_dcs.wms.access import Rules
from juno_dcs.wms.brokerage import queues_from_topology
from juno_dcs.wms.classify import load_error_rules
from juno_dcs.wms.config import WmsConfig
from juno_dcs.wms.logic import Context
from juno_dcs.wms.retry import load_rules
from juno_dcs.wms.routes import Gate


def context(config: WmsConfig) -> Context:
    try:
        topology = load_topology(config.topology)
    except TopologyError as exc:  # a file it cannot read is a TopologyError too
        raise ConfigError(f"topology {config.topology}: {exc}") from exc
    classes = load_error_rules(config.error_rules or data_file("wms-errors.yaml"))
    return Context(queues=queues_from_topology(topology, config.memory_scale),
                   rules=load_rules(config.retry_rules, classes), classes=classes, lease_s=config.lease_s)


def gate(config: WmsConfig) -> Gate | None:
    """The server's token checks; None when the configuration turns them off (`auth: null`)."""
    if config.auth is None:
        return None
    return Gate(identities=IdentityCache(config.auth.verifier()),
                rules=Rules.of(config.auth, config.pilot_group, config.production_group))
