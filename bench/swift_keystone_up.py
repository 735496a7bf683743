"""A 3-site Swift WAN bed with each site's Keystone (``keystone=True``), up until STATE/stop.

Prints the seconds of ``Wan.up`` and ``SwiftTestbed.up``, then each site's account and
resident bytes (``bench/results/swift-keystone-up-*.json``). As root:

    python bench/swift_keystone_up.py STATE
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from edgescope.testbed import swift_keystone
from edgescope.testbed.swift import SwiftTestbed
from edgescope.testbed.wan import Wan, load_topology

SITES = ["Paris", "Corte", "Marseille"]


def main(state: Path) -> None:
    began = time.monotonic()
    wan = Wan.up(load_topology(sites=SITES), state / "wan", prefix="h21k")
    wan_up = time.monotonic()
    bed = SwiftTestbed.create(state / "swift", SITES, port_base=16000, wan=wan, keystone=True)
    try:
        took = bed.up()
        done = {"wan": wan_up - began, "bed": time.monotonic() - wan_up, "sites": took}
        print(json.dumps(done), flush=True)
        clouds = swift_keystone.clouds(list(bed.sites.values()))
        (state / "clouds.yaml").write_text(json.dumps(clouds))
        for site in bed.sites.values():
            account = swift_keystone.keystone_account(site)
            print(site.name, site.exec_prefix, account, bed.memory(site.name), flush=True)
        while not (state / "stop").exists():
            time.sleep(2)
    finally:
        bed.down()
        wan.down()
        print("down", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
