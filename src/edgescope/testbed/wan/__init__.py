"""The emulated edge WAN: sites in network namespaces joined by a delaying bridge.

topology.py   sites, addresses, RTT/jitter/loss per pair (TOML; default: Renater)
netns.py      the namespaces, the bridge, the veths
partition.py  cuts between sites (iptables DROP rules in the wan namespace)
delayer.py    userspace per-pair delays through NFQUEUE (kernels without netem)
netem.py      kernel per-pair delays (kernels with netem)
wan.py        ``Wan``: the API the testbed and the CLI use

from edgescope.testbed.wan import Wan, load_topology
wan = Wan.up(load_topology(), state_dir)
wan.exec_prefix("Paris")     # ['ip', 'netns', 'exec', 'es-paris']
"""

from edgescope.testbed.wan._commands import WanError
from edgescope.testbed.wan.topology import Link, Site, Topology, load_topology, parse_topology
from edgescope.testbed.wan.wan import DEFAULT_PREFIX, DEFAULT_STATE_DIR, Wan, WanStatus

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_STATE_DIR",
    "Link",
    "Site",
    "Topology",
    "Wan",
    "WanError",
    "WanStatus",
    "load_topology",
    "parse_topology",
]
