"""The console in a real headless Chromium, in front of real proxies on loopback.

What an operator does: open the page, watch calls arrive with their route and open one, see
a peer go down (its proxy stops) and the link and breaker change, see writes queued during
a cut drain after the heal. Every wait is generous (a failure bound, not a timing claim).
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By

from browser import attribute, count, text_of
from conftest import Page, StartConsole
from edgescope.observe.events import Events, EventsConfig

pytestmark = pytest.mark.slow
FAST_STATE = EventsConfig(state_interval=0.2)


def css(driver: Any, selector: str) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, selector))


async def test_calls_arrive_with_their_route_and_a_dead_peer_shows(
    sites: Any, start_console: StartConsole, page: Page
) -> None:
    names = ("Paris", "Corte", "Lyon")
    made = await sites(
        *names,
        identity=True,
        breaker={"probe_interval": 0.2, "failure_threshold": 1, "open_seconds": 30},
        extensions={n: [Events(n, FAST_STATE)] for n in names},
    )
    paris, _corte, lyon = made
    await page.open(await start_console(made))
    await page.wait(
        "every proxy is reachable",
        lambda d: count(d, '.site[data-reachable="true"]') == 3,
    )

    await paris.get("/image/items", headers={"X-Scope": "{image: Paris & Corte}"})
    await paris.get("/image/only/Lyon", headers={"X-Scope": "{image: Corte | Lyon}"})
    row = '#calls tr[data-site="Paris"][data-service="image"]'
    await page.wait(
        "the | call at Paris, with both branches of its route",
        lambda d: (
            count(d, f'{row} [data-route-site="Corte"][data-route-status="404"]')
            and count(d, f'{row} [data-route-site="Lyon"][data-route-status="200"]')
        ),
    )
    await page.wait(
        "the & call at Paris, answered by both sites",
        lambda d: count(d, f'{row} [data-route-site="Paris"][data-route-status="200"]'),
    )

    def open_the_or_call(driver: Any) -> None:
        for candidate in css(driver, row):
            if css(candidate, '[data-route-site="Lyon"]') and candidate.is_displayed():
                candidate.click()
                return
        raise AssertionError("no | call row")

    await page.run(open_the_or_call)
    await page.wait(
        "the call's detail: each branch, and the hops the peers reported",
        lambda d: (
            text_of(d, '#detail [data-branch="Corte"]').split()[:2] == ["Corte", "404"]
            and text_of(d, '#detail [data-branch="Lyon"]').split()[:2] == ["Lyon", "200"]
            and "Lyon: GET image /only/Lyon" in text_of(d, "#detail .hops")
        ),
    )
    await page.wait(
        "the Paris–Corte link is up, with the RTT the probes measured",
        lambda d: (
            attribute(d, '#links tr[data-link="Corte|Paris"]', "data-state") == "up"
            and "ms" in text_of(d, '#links tr[data-link="Corte|Paris"] .rtt')
        ),
    )
    await page.shot("console-loopback-calls")

    await lyon.proxy.stop()
    await page.wait(
        "Lyon's proxy is shown unreachable, Paris's breaker to Lyon open, the link down",
        lambda d: (
            attribute(d, '.site[data-site="Lyon"]', "data-reachable") == "false"
            and attribute(d, '.site[data-site="Paris"] [data-peer="Lyon"]', "data-state") == "open"
            and attribute(d, '#links tr[data-link="Lyon|Paris"]', "data-state") == "down"
        ),
    )
    await page.shot("console-loopback-peer-down")


async def test_writes_queued_during_a_cut_drain_after_the_heal(
    replica_sites: Any, start_console: StartConsole, page: Page
) -> None:
    paris, corte = await replica_sites(
        "Paris",
        "Corte",
        replay_interval=0.3,
        extensions=lambda name, replicas: [Events(name, FAST_STATE, replicas=replicas)],
    )
    await page.open(await start_console([paris, corte]))
    await page.wait(
        "both proxies are reachable, nothing is queued",
        lambda d: attribute(d, '.site[data-site="Paris"] .pending', "data-count") == "0",
    )
    for link in (*paris.links.values(), *corte.links.values()):
        await link.cut()
    status, headers, _ = await paris.call(
        "POST",
        "/things",
        "{image: Paris & Corte}",
        json={"thing": {"name": "queued-while-cut"}},
        headers={"X-Scope-Mode": "eventual", "X-Auth-Token": "t"},
    )
    assert status == 201, headers
    await page.wait(
        "the write queued at Paris for Corte",
        lambda d: (
            attribute(d, '.site[data-site="Paris"] .pending', "data-count") == "1"
            and "1 for Corte" in text_of(d, '.site[data-site="Paris"] .pending')
        ),
    )
    await page.shot("console-loopback-queued")
    for link in (*paris.links.values(), *corte.links.values()):
        await link.heal()
    await page.wait(
        "the queue drained after the heal",
        lambda d: attribute(d, '.site[data-site="Paris"] .pending', "data-count") == "0",
    )
    assert any(item.get("name") == "queued-while-cut" for item in corte.items.values())


async def test_the_page_needs_the_url_with_the_token_then_the_cookie_does(
    sites: Any, start_console: StartConsole, page: Page
) -> None:
    """Issue 20, finding 7: the session token is only in the printed URL; opening it sets a
    cookie and leaves the address bar, after which the page and its feed work."""
    [paris] = await sites(
        "Paris", identity=True, extensions={"Paris": [Events("Paris", FAST_STATE)]}
    )
    url = await start_console([paris])
    bare = url.split("?", 1)[0]
    await page.open(bare)
    await page.wait(
        "the page without the token is refused",
        lambda d: "open the URL the console printed" in d.find_element(By.TAG_NAME, "body").text,
    )
    await page.open(url)
    await page.wait("the token left the address bar", lambda d: d.current_url == bare)
    await page.wait(
        "the feed, with the cookie, shows the proxy",
        lambda d: count(d, '.site[data-reachable="true"]') == 1,
    )
    await page.open(bare)  # a reload: the cookie is enough
    await page.wait(
        "the page again, by its cookie",
        lambda d: count(d, '.site[data-reachable="true"]') == 1,
    )
