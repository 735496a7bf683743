"""``openstack --os-scope-mode partial`` through real proxies: the real CLI, a dead site.

The command is ``container list`` against the generic backend's ``/image/items`` (the backend
is no OpenStack imitation; the command only needs a JSON answer): what is checked is what the
plugin does with the proxy's partial answer (a warning on stderr naming the missing site,
exit status 0) and that strict mode still fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from osc_cli import run_openstack

SitesFactory = Any


async def _openstack(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = await run_openstack(*args, env=env)
    return result.code, result.stdout, result.stderr


def _cli(paris: Any, *options: str) -> list[str]:
    return [
        "--os-auth-type",
        "admin_token",
        "--os-token",
        "tok123",
        "--os-endpoint",
        f"{paris.url}/image/items",
        "--os-region-name",
        "Paris",
        "--os-scope-sites",
        "Paris,Lyon,Corte",
        "--os-scope",
        "{image: Paris & Lyon & Corte, object-store: Paris & Lyon & Corte}",
        *options,
        "container",
        "list",
        "-f",
        "value",
    ]


@pytest.mark.slow
async def test_partial_warns_on_stderr_and_exits_0_strict_fails(
    sites: SitesFactory, refused_url: str
) -> None:
    paris, _corte = await sites(
        "Paris", "Corte", extra_peers={"Paris": {"Lyon": {"url": refused_url}}}
    )
    # one after the other: three CLIs at once are slow on a loaded machine
    partial = await _openstack(*_cli(paris, "--os-scope-mode", "partial"))
    by_env = await _openstack(*_cli(paris), env={"OS_SCOPE_MODE": "partial"})
    strict = await _openstack(*_cli(paris))
    for code, out, err in (partial, by_env):
        assert code == 0, err
        warning = "edgescope: partial answer: no answer from Lyon ("
        lines = [line for line in err.splitlines() if line.startswith(warning)]
        assert len(lines) == 1 and "connection refused" in lines[0], err
        assert "Traceback" not in err and "Lyon" not in out
    code, out, err = strict
    assert code != 0
    assert "Lyon: unreachable" in err and "partial answer" not in err
    assert "Traceback" not in err
