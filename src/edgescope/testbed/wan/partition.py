"""Network partitions: which site pairs are cut, and the iptables rules that cut them.

A cut is a pair of site names. The rules live in the wan namespace, in a chain
``ES-CUT`` that FORWARD jumps to before anything else (before the delayer's NFQUEUE
rule), so a cut drops every new packet of the pair in both directions, established
TCP connections included. The whole chain is replaced atomically by one
``iptables-restore --noflush`` call (a few milliseconds). The delayer is told too, so
packets already held for a cut pair are dropped at release time.

    cuts = add_cut(frozenset(), "Paris", "Corte", topology)
    cuts = isolate(cuts, "Corte", topology)       # Corte from everyone
    apply_cuts("es-wan", cut_rules(cuts, topology))
    cuts = heal(cuts, topology)                     # everything restored
"""

from __future__ import annotations

from collections.abc import Iterable

from edgescope.errors import ConfigError
from edgescope.testbed.wan._commands import netns_cmd, run
from edgescope.testbed.wan.topology import Topology

CHAIN = "ES-CUT"
Cut = frozenset[str]
"""An unordered pair of site names."""


def add_cut(cuts: frozenset[Cut], a: str, b: str, topology: Topology) -> frozenset[Cut]:
    """``cuts`` plus the a–b pair (names checked and normalised)."""
    first, second = topology.site(a).name, topology.site(b).name
    if first == second:
        raise ConfigError(f"cannot partition {first} from itself; name two different sites")
    return cuts | {frozenset((first, second))}


def isolate(cuts: frozenset[Cut], site: str, topology: Topology) -> frozenset[Cut]:
    """``cuts`` plus every pair between ``site`` and the other sites."""
    name = topology.site(site).name
    return cuts | {frozenset((name, other)) for other in topology.names if other != name}


def heal(
    cuts: frozenset[Cut], topology: Topology, a: str | None = None, b: str | None = None
) -> frozenset[Cut]:
    """No cuts (no sites named), the cuts touching ``a``, or only the a–b cut removed."""
    if a is None:
        if b is not None:
            raise ConfigError("heal takes no site, one site, or two sites")
        return frozenset()
    first = topology.site(a).name
    if b is None:
        return frozenset(c for c in cuts if first not in c)
    second = topology.site(b).name
    return cuts - {frozenset((first, second))}


def cut_rules(cuts: Iterable[Cut], topology: Topology) -> list[tuple[str, str]]:
    """Directed (source address, destination address) pairs to drop, sorted."""
    rules: set[tuple[str, str]] = set()
    for cut in cuts:
        a, b = (topology.site(name).address for name in sorted(cut))
        rules |= {(a, b), (b, a)}
    return sorted(rules)


def install_chain(wan_namespace: str) -> None:
    """Create the empty ES-CUT chain and jump to it first thing in FORWARD."""
    _restore(wan_namespace, [f":{CHAIN} - [0:0]", f"-I FORWARD 1 -j {CHAIN}"])


def apply_cuts(wan_namespace: str, rules: list[tuple[str, str]]) -> None:
    """Replace the content of ES-CUT with DROP rules for ``rules``, atomically."""
    lines = [f":{CHAIN} - [0:0]"]  # in --noflush mode this flushes just our chain
    lines += [f"-A {CHAIN} -s {src}/32 -d {dst}/32 -j DROP" for src, dst in rules]
    _restore(wan_namespace, lines)


def _restore(wan_namespace: str, lines: list[str]) -> None:
    text = "*filter\n" + "".join(f"{line}\n" for line in lines) + "COMMIT\n"
    run(netns_cmd(wan_namespace, "iptables-restore", "-w", "--noflush"), input=text)
