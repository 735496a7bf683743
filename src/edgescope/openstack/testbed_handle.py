"""What the scenarios need from a running testbed, as a Protocol, and the adapter to the real one.

Neighbours: ``scenarios.py`` and ``tests/integration`` use only :class:`TestbedHandle`;
:func:`handle_for` wraps :class:`edgescope.testbed.Testbed` (duck-typed, so runtime code does
not import the testbed package), and the scenarios need nothing else from it.

    >>> handle = handle_for(Testbed.from_state(Path("state")))
    >>> handle.cloud_name("Paris", admin=False)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol


class TestbedHandle(Protocol):
    """A running set of sites, each with its proxy, and a clouds.yaml with a cloud per site."""

    @property
    def clouds_yaml(self) -> Path: ...

    @property
    def site_names(self) -> Sequence[str]: ...

    def cloud_name(self, site: str, *, admin: bool) -> str:
        """The clouds.yaml entry of ``site``'s admin, or of its non-admin user (project demo)."""
        ...

    def log_path(self, site: str, service: str) -> Path: ...

    def proxy_url(self, site: str) -> str: ...

    def proxy_endpoint(self, site: str, service_type: str) -> str:
        """Where ``site``'s proxy itself serves a service (no version suffix), whatever
        stands in front of it."""
        ...

    def stop_service(self, site: str, service: str) -> None: ...

    def start_service(self, site: str, service: str) -> None: ...


def handle_for(testbed: Any) -> TestbedHandle:
    """Adapt an :class:`edgescope.testbed.Testbed` to :class:`TestbedHandle`."""
    return _TestbedAdapter(testbed)


class _TestbedAdapter:
    def __init__(self, testbed: Any) -> None:
        self._testbed = testbed

    @property
    def clouds_yaml(self) -> Path:
        return Path(self._testbed.clouds_yaml)

    @property
    def site_names(self) -> Sequence[str]:
        return list(self._testbed.sites)

    def cloud_name(self, site: str, *, admin: bool) -> str:
        info = self._testbed.sites[site]
        return str(info.cloud if admin else info.demo_cloud)

    def log_path(self, site: str, service: str) -> Path:
        return Path(self._testbed.sites[site].logs[service])

    def proxy_url(self, site: str) -> str:
        return str(self._testbed.sites[site].proxy_url)

    def proxy_endpoint(self, site: str, service_type: str) -> str:
        return str(self._testbed.sites[site].proxy_endpoints[service_type])

    def stop_service(self, site: str, service: str) -> None:
        self._testbed.stop_service(site, service)

    def start_service(self, site: str, service: str) -> None:
        self._testbed.start_service(site, service)
