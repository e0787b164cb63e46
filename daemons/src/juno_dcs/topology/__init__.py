"""The grid's topology (etc/topology.yaml): typed, validated, with line numbers in every error."""

from juno_dcs.topology.loader import TopologyError, load_topology, parse_topology
from juno_dcs.topology.models import RSE, Account, Site, Topology
from juno_dcs.topology.sizes import parse_size
from juno_dcs.topology.yamlsrc import Problem

__all__ = [
    "RSE", "Account", "Problem", "Site", "Topology", "TopologyError", "load_topology", "parse_size", "parse_topology",
]
