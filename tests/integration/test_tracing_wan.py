"""One trace of an x-DC boot spans Paris and Corte: OpenTelemetry on the WAN testbed.

An OTLP/HTTP receiver (tests/otlp.py: the official protobuf types, in this process) listens
on Paris's WAN address, inside Paris's namespace, like a collector at one site. Paris's and
Corte's proxies are restarted with a ``[tracing]`` table pointing at it (Corte's spans cross
the WAN to reach it), the real CLI boots ``{nova: Paris, glance: Corte}``, and the test finds
one trace holding Paris's compute call, nova's image call at Paris (joined by its request id)
and Corte's image call (joined by ``traceparent`` over the signed hop). The proxies are
restarted with their own config afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from wan_testbed import WanTestbed

from edgescope.demo.probes import SERVER_PREFIX
from edgescope.demo.run import sites_of
from edgescope.testbed.wan.netns import enter
from otlp import Collector, ReceivedSpan

pytestmark = [pytest.mark.testbed, pytest.mark.wan, pytest.mark.slow]

PARIS, CORTE = "Paris", "Corte"
XDC = "{nova: Paris, glance: Corte}"
BOOT = ("--image", "debian", "--flavor", "m1.tiny", "--nic", "none", "--wait", "-f", "json")
SERVER = 2


def socket_in(namespace: str, host: str) -> socket.socket:
    """A listening socket made inside ``namespace`` (by a thread that enters it and ends)."""
    made: list[socket.socket] = []
    errors: list[BaseException] = []

    def make() -> None:
        try:
            enter(namespace)
            made.append(socket.create_server((host, 0)))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return made[0]


@pytest.fixture
async def collector(wtb: WanTestbed) -> AsyncIterator[tuple[Collector, str]]:
    receiver = Collector()
    sock = socket_in(wtb.wan.namespace(PARIS), wtb.wan.site_address(PARIS))
    url = await receiver.start(sock)
    yield receiver, url
    await receiver.stop()


@pytest.fixture
def traced_proxies(wtb: WanTestbed, collector: tuple[Collector, str]) -> Iterator[None]:
    """Paris's and Corte's proxies restarted with [tracing]; with their own config after."""
    _, url = collector
    originals = {}
    try:
        for name in (PARIS, CORTE):
            site = wtb.testbed.site(name)
            config = site.plan.etc / "proxy.toml"
            originals[name] = config.read_text()
            site.stop_service("proxy")
            config.write_text(originals[name] + f'\n[tracing]\notlp_endpoint = "{url}"\n')
            site.start_service("proxy")
        yield
    finally:
        for name, text in originals.items():
            site = wtb.testbed.site(name)
            site.stop_service("proxy")
            (site.plan.etc / "proxy.toml").write_text(text)
            site.start_service("proxy")


def in_one_trace(spans: list[ReceivedSpan]) -> list[ReceivedSpan] | None:
    """The spans of a trace holding Paris's boot and Corte's image call, if one does."""
    for boot in spans:
        if (boot.site, boot.name, boot.kind) != (PARIS, "compute POST", SERVER):
            continue
        trace = [s for s in spans if s.trace_id == boot.trace_id]
        if any(s.site == CORTE and s.name.startswith("image ") for s in trace):
            return trace
    return None


async def test_an_x_dc_boot_is_one_trace_across_paris_and_corte(
    wtb: WanTestbed, collector: tuple[Collector, str], traced_proxies: None
) -> None:
    receiver, _ = collector
    sites = sites_of(wtb.testbed)
    name = f"{SERVER_PREFIX}traced-{secrets.token_hex(3)}"
    try:
        booted = await asyncio.to_thread(
            sites.run, PARIS, "server", "create", name, *BOOT, cloud=PARIS, scope=XDC, timeout=300
        )
        assert booted.ok, booted.stderr
        await receiver.wait(lambda spans: in_one_trace(spans) is not None, timeout=60)
    finally:
        await asyncio.to_thread(
            sites.run, PARIS, "server", "delete", name, "--wait", cloud=PARIS, timeout=200
        )
    trace = in_one_trace(receiver.spans)
    assert trace is not None
    by_id: dict[str, Any] = {s.span_id: s for s in trace}
    corte_image = next(s for s in trace if s.site == CORTE and s.kind == SERVER)
    chain, span = [], corte_image
    while span is not None:  # walk up: Corte's call -> Paris's branch -> ... -> the boot
        chain.append((span.site, span.name))
        span = by_id.get(span.parent_id)
    assert chain[-1] == (PARIS, "compute POST"), chain
    assert (PARIS, "image → Corte") in chain, chain
    print(f"\nthe boot's trace: {len(trace)} spans; Corte's image call up to the boot: {chain}")
