"""The netem backend's tc commands: every directed pair gets its own delay, jitter and loss."""

from __future__ import annotations

import re

from edgescope.testbed.wan import load_topology
from edgescope.testbed.wan.netem import netem_args, tc_commands
from edgescope.testbed.wan.netns import WanNames

TOPO = load_topology().with_link("Paris", "Corte", jitter_ms=2, loss=0.05)


def test_each_direction_is_shaped_on_the_destination_port_by_source() -> None:
    lines = tc_commands(TOPO, WanNames("es"))
    # (port, source address) -> netem parameters, read back from the generated commands
    flows: dict[tuple[str, str], str] = {}
    for port in ("p-paris", "p-corte", "p-marseille"):
        handles = {
            m[1]: m[2]
            for line in lines
            if (m := re.match(rf"qdisc add dev {port} parent 1:(\d+) handle \d+: netem (.*)", line))
        }
        for line in lines:
            if m := re.match(
                rf"filter add dev {port} .* match ip src ([\d.]+)/32 flowid 1:(\d+)", line
            ):
                flows[(port, m[1])] = handles[m[2]]
    assert flows == {
        ("p-paris", "10.66.0.2"): "delay 10ms 2ms loss random 5%",
        ("p-paris", "10.66.0.3"): "delay 5ms",
        ("p-corte", "10.66.0.1"): "delay 10ms 2ms loss random 5%",
        ("p-corte", "10.66.0.3"): "delay 7.5ms",
        ("p-marseille", "10.66.0.1"): "delay 5ms",
        ("p-marseille", "10.66.0.2"): "delay 7.5ms",
    }


def test_netem_args_of_a_plain_link() -> None:
    assert netem_args(TOPO.link("Paris", "Marseille")) == "delay 5ms"
