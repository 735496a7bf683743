"""What the scenarios need from a running testbed, as a Protocol, and the adapter to the real one.

Neighbours: ``scenarios.py`` and ``tests/integration`` use only :class:`TestbedHandle`;
:func:`handle_for` wraps the testbed's deployment object (:mod:`edgescope.testbed`), so the
scenarios do not depend on how the testbed is built.

    >>> handle = handle_for(deployment)
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

    def stop_service(self, site: str, service: str) -> None: ...

    def start_service(self, site: str, service: str) -> None: ...


def handle_for(deployment: Any) -> TestbedHandle:
    """Adapt the testbed's deployment object to :class:`TestbedHandle`."""
    return _DeploymentHandle(deployment)


class _DeploymentHandle:
    __test__ = False

    def __init__(self, deployment: Any) -> None:
        self._deployment = deployment

    @property
    def clouds_yaml(self) -> Path:
        return Path(self._deployment.clouds_yaml)

    @property
    def site_names(self) -> Sequence[str]:
        return [site.plan.name for site in self._deployment.sites]

    def _site(self, name: str) -> Any:
        return self._deployment.site(name)

    def cloud_name(self, site: str, *, admin: bool) -> str:
        return str(self._deployment.cloud_name(site, admin=admin))

    def log_path(self, site: str, service: str) -> Path:
        return Path(self._site(site).plan.log_path(service))

    def proxy_url(self, site: str) -> str:
        return str(self._site(site).plan.proxy_url)

    def stop_service(self, site: str, service: str) -> None:
        self._site(site).stop_service(service)

    def start_service(self, site: str, service: str) -> None:
        self._site(site).start_service(service)
