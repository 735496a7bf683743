"""Kernel-side delays with netem, for kernels that have it (the delayer is the fallback).

On each bridge port ``p-<dst>`` (egress towards site dst) an htb root holds one class per
source site; each class has a netem child with the one-way delay, jitter and loss of
(src → dst), and a u32 filter on the source address steers packets into it. Unknown
sources fall into an unshaped default class.

    if netem_available("es-wan"):
        apply(topology, names)
        update_link(topology, names, "Paris", "Corte")    # after a topology change

Not exercised on the development machine (its kernel lacks netem); the tc commands are
unit-tested as text, and ``netem_available`` decides at ``Wan.up`` which backend runs.
"""

from __future__ import annotations

from edgescope.testbed.wan._commands import netns_cmd, run
from edgescope.testbed.wan.netns import WanNames
from edgescope.testbed.wan.topology import Link, Topology

_UNSHAPED = "rate 10gbit quantum 60000"  # an explicit quantum silences htb warnings
_DEFAULT_CLASS = 1


def netem_available(wan_namespace: str) -> bool:
    """True when this kernel accepts a netem qdisc (probed on the wan namespace's lo)."""
    probe = run(
        netns_cmd(
            wan_namespace, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"
        ),
        check=False,
    )
    if probe.returncode != 0:
        return False
    run(netns_cmd(wan_namespace, "tc", "qdisc", "del", "dev", "lo", "root"), check=False)
    return True


def netem_args(link: Link) -> str:
    """The netem parameters of one direction of ``link``."""
    text = f"delay {link.one_way_ms:g}ms"
    if link.jitter_ms:
        text += f" {link.jitter_ms:g}ms"
    if link.loss:
        text += f" loss random {link.loss * 100:g}%"
    return text


def tc_commands(topology: Topology, names: WanNames) -> list[str]:
    """Every ``tc -batch`` line that shapes all directed pairs of ``topology``."""
    lines: list[str] = []
    for dst in topology.sites:
        port = names.port(dst.name)
        lines += [
            f"qdisc add dev {port} root handle 1: htb default {_DEFAULT_CLASS}",
            f"class add dev {port} parent 1: classid 1:{_DEFAULT_CLASS} htb {_UNSHAPED}",
        ]
        for src in topology.sites:
            if src == dst:
                continue
            minor = _class_minor(topology, src.name)
            link = topology.link(src.name, dst.name)
            lines += [
                f"class add dev {port} parent 1: classid 1:{minor} htb {_UNSHAPED}",
                f"qdisc add dev {port} parent 1:{minor} handle {minor}: netem {netem_args(link)}",
                f"filter add dev {port} parent 1: protocol ip prio 1 u32 "
                f"match ip src {src.address}/32 flowid 1:{minor}",
            ]
    return lines


def apply(topology: Topology, names: WanNames) -> None:
    run(
        netns_cmd(names.wan, "tc", "-batch", "-"),
        input="".join(f"{c}\n" for c in tc_commands(topology, names)),
    )


def reset(topology: Topology, names: WanNames) -> None:
    """Remove the shaping of every site port (before :func:`apply` of a new topology)."""
    for site in topology.sites:
        run(netns_cmd(names.wan, "tc", "qdisc", "del", "dev", names.port(site.name), "root"),
            check=False)  # fmt: skip


def update_link(topology: Topology, names: WanNames, a: str, b: str) -> None:
    """Re-apply the netem parameters of the a–b link, both directions."""
    link = topology.link(a, b)
    lines = []
    for src, dst in ((link.a, link.b), (link.b, link.a)):
        minor = _class_minor(topology, src)
        port = names.port(dst)
        lines.append(
            f"qdisc change dev {port} parent 1:{minor} handle {minor}: netem {netem_args(link)}"
        )
    run(netns_cmd(names.wan, "tc", "-batch", "-"), input="".join(f"{c}\n" for c in lines))


def _class_minor(topology: Topology, site: str) -> int:
    """The htb class (and netem handle) for traffic coming from ``site``: 10, 11, ..."""
    return 10 + topology.names.index(site)
