"""The console on the WAN testbed, in headless Chromium: a cut, an x-DC boot, a heal.

``edgescope console --state-dir <testbed> --at Paris`` runs as an operator would at Paris: its
listener in the root namespace (where the browser is), its streams leaving from Paris's
namespace, so what it hears of Corte crosses the WAN. The test boots ``{nova: Paris, glance:
Corte}`` with the real CLI and finds nova's image call to Corte in the page, cuts Paris–Corte
and sees the link cut and Paris's breaker towards Corte open, queues an eventual write while
cut and sees it drain after the heal. Screenshots go to ``artifacts/`` (``console-wan-*``).

Every wait is generous (a failure bound, not a timing claim).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from wan_testbed import WanTestbed

from browser import ARTIFACTS, attribute, chromium, count, screenshot, text_of, wait_for
from edgescope.demo.probes import SERVER_PREFIX, Sites
from edgescope.demo.run import sites_of

pytestmark = [pytest.mark.testbed, pytest.mark.wan, pytest.mark.slow]

PARIS, CORTE = "Paris", "Corte"
XDC = "{nova: Paris, glance: Corte}"
USERS = "{keystone: Paris & Corte}"
EDGESCOPE = str(Path(sys.executable).with_name("edgescope"))
BOOT = ("--image", "debian", "--flavor", "m1.tiny", "--nic", "none", "--wait", "-f", "json")


def css(driver: Any, selector: str) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, selector))


@pytest.fixture
def console_url(wtb: WanTestbed) -> Iterator[str]:
    """``edgescope console`` at Paris on a free port (its log in artifacts/); stopped, by its
    PID, afterwards."""
    argv = [EDGESCOPE, "console", "--state-dir", str(wtb.testbed.state_dir), "--at", PARIS,
            "--listen", "127.0.0.1:0"]  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "console-wan.log").open("w") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                pytest.fail("edgescope console did not start: see artifacts/console-wan.log")
            started = json.loads(line)
            assert started["seen_from"] == PARIS
            yield str(started["url"])
        finally:
            proc.terminate()
            try:
                proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


@pytest.fixture
def sites(wtb: WanTestbed) -> Sites:
    return sites_of(wtb.testbed)


def test_console_sees_a_boot_a_cut_and_writes_draining_after_the_heal(
    wtb: WanTestbed, sites: Sites, console_url: str
) -> None:
    server = f"{SERVER_PREFIX}console-{secrets.token_hex(3)}"
    user = f"es-console-{secrets.token_hex(3)}"
    with chromium() as page:
        page.get(console_url)
        wait_for(
            page,
            "every proxy is reachable from Paris",
            lambda d: count(d, '.site[data-reachable="true"]') == 3,
            timeout=60,
        )
        try:
            booted = sites.run(PARIS, "server", "create", server, *BOOT, cloud=PARIS,
                               scope=XDC, timeout=300)  # fmt: skip
            assert booted.ok, booted.stderr
            # nova's own call: its scope rides on the user's token (the CLI's calls: X-Scope)
            image_call = (
                '#calls tr[data-site="Paris"][data-service="image"][data-carrier="token"]'
                ' [data-route-site="Corte"][data-route-status="200"]'
            )
            wait_for(
                page, "nova's image call at Paris, routed to Corte", lambda d: count(d, image_call)
            )
            css(page, image_call)[0].click()
            wait_for(
                page,
                "the call's detail names Corte's branch and Corte's own report",
                lambda d: (
                    count(d, '#detail [data-branch="Corte"]')
                    and "Corte: GET image" in text_of(d, "#detail .hops")
                ),
            )
            screenshot(page, "console-wan-xdc-boot")
            page.find_element(By.ID, "close-detail").click()

            # Paris probes the peers it used in the last minute: use Corte now, as a user would
            shown = sites.run(PARIS, "image", "show", "debian", "-c", "id", cloud=PARIS,
                              scope="{glance: Corte}")  # fmt: skip
            assert shown.ok, shown.stderr
            wtb.wan.partition(PARIS, CORTE)
            cut_at = time.monotonic()
            wait_for(
                page,
                "the Paris–Corte link is cut and Paris's breaker towards Corte opens",
                lambda d: (
                    attribute(d, '#links tr[data-link="Corte|Paris"]', "data-state") == "cut"
                    and attribute(d, '.site[data-site="Paris"] [data-peer="Corte"]', "data-state")
                    == "open"
                ),
                timeout=60,
            )
            shown_open = time.monotonic() - cut_at
            wait_for(
                page,
                "Corte is unreachable from the console at Paris",
                lambda d: attribute(d, '.site[data-site="Corte"]', "data-reachable") == "false",
                timeout=60,
            )
            queued = sites.run(PARIS, "user", "create", user, "--password", "pw-console",
                               cloud=PARIS, scope=USERS, mode="eventual")  # fmt: skip
            assert queued.ok, queued.stderr
            wait_for(
                page,
                "Paris shows the write queued for Corte",
                lambda d: (
                    attribute(d, '.site[data-site="Paris"] .pending', "data-count")
                    not in (None, "0")
                ),
            )
            screenshot(page, "console-wan-cut")
        finally:
            wtb.wan.heal(PARIS, CORTE)
            healed_at = time.monotonic()
        wait_for(
            page,
            "the queue at Paris drains, Corte is back, the link is up",
            lambda d: (
                attribute(d, '.site[data-site="Paris"] .pending', "data-count") == "0"
                and attribute(d, '.site[data-site="Corte"]', "data-reachable") == "true"
                and attribute(d, '#links tr[data-link="Corte|Paris"]', "data-state") == "up"
            ),
            timeout=120,
        )
        screenshot(page, "console-wan-healed")
        print(
            f"\nthe page showed the cut and Paris's breaker open {shown_open:.1f} s after the "
            f"cut, the queue drained and the link up {time.monotonic() - healed_at:.1f} s "
            "after the heal"
        )


@pytest.fixture(autouse=True)
def _cleanup(wtb: WanTestbed, sites: Sites) -> Iterator[None]:
    """Whatever the test made (named es-console-*) is deleted, healed first."""
    yield
    wtb.wan.heal(PARIS, CORTE)
    for row in sites.json(PARIS, "user", "list", cloud=PARIS, scope=USERS):
        if row["Name"].startswith("es-console-"):
            sites.run(PARIS, "user", "delete", row["Name"], cloud=PARIS, scope=USERS)
    for row in sites.json(PARIS, "server", "list", cloud=PARIS):
        if row["Name"].startswith(f"{SERVER_PREFIX}console-"):
            sites.run(PARIS, "server", "delete", row["ID"], "--wait", cloud=PARIS, timeout=200)
