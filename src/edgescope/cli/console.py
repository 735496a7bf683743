"""``edgescope console``: the live web console of the sites' proxies, in a browser.

    edgescope console --state-dir state-wan              # a testbed: its proxies, its admins
    edgescope console --state-dir state-wan --at Corte   # seen from Corte's namespace
    edgescope console --proxy https://paris.example:20190 --cloud paris \\
                      --proxy https://corte.example:20190 --cloud corte   # clouds.yaml entries
    OS_USERNAME=admin OS_PASSWORD=... edgescope console --proxy http://127.0.0.1:20190

Each site's operator comes from its own ``clouds.yaml`` entry (``--cloud``, one per
``--proxy``, in order); the ``OS_*`` password serves a console of one proxy only. Plain
http to a proxy or Keystone off this host is refused unless ``--allow-http``.

Thin: options, the listener, and the one JSON line it prints once listening, whose URL
carries the session's token (``{"event": "started", "url": "http://127.0.0.1:8470/?token=..."}``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import socket
from pathlib import Path
from typing import Annotated

import typer
from aiohttp import web
from rich.console import Console as Rich
from rich.markup import escape

from edgescope.console.app import Console, console_app, started_line
from edgescope.console.targets import (
    Credentials,
    Target,
    from_clouds,
    from_testbed,
    from_urls,
)
from edgescope.errors import ConfigError, EdgescopeError

_err = Rich(stderr=True, soft_wrap=True)


def console(
    state_dir: Annotated[
        Path | None, typer.Option(help="A testbed's folder: watch its proxies as its admins.")
    ] = None,
    proxy: Annotated[
        list[str] | None, typer.Option(help="URL of a proxy to watch (repeatable).")
    ] = None,
    cloud: Annotated[
        list[str] | None,
        typer.Option(help="The clouds.yaml entry of each --proxy's site, in the same order."),
    ] = None,
    clouds_file: Annotated[
        Path | None, typer.Option(help="A clouds.yaml (default: openstacksdk's search path).")
    ] = None,
    allow_http: Annotated[
        bool,
        typer.Option(help="Accept plain http to a proxy or Keystone off this host (clear text)."),
    ] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="A name the browser may reach the console by (besides IPs, localhost)."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(help="WAN testbed: watch from this site's namespace (default: the first)."),
    ] = None,
    listen: Annotated[str, typer.Option(help="HOST:PORT of the console (a browser's).")] = (
        "127.0.0.1:8470"
    ),
    username: Annotated[str, typer.Option("--os-username", envvar="OS_USERNAME")] = "admin",
    password: Annotated[
        str, typer.Option("--os-password", envvar="OS_PASSWORD", show_default=False)
    ] = "",
    project: Annotated[str, typer.Option("--os-project-name", envvar="OS_PROJECT_NAME")] = "admin",
    user_domain: Annotated[
        str, typer.Option("--os-user-domain-name", envvar="OS_USER_DOMAIN_NAME")
    ] = "Default",
    project_domain: Annotated[
        str, typer.Option("--os-project-domain-name", envvar="OS_PROJECT_DOMAIN_NAME")
    ] = "Default",
    auth_path: Annotated[
        str, typer.Option(help="Where each proxy serves its Keystone (with --proxy).")
    ] = "/identity/v3",
) -> None:
    """Serve the live console of the proxies (sites, links, breakers, calls, replicas)."""
    try:
        host, port = _address(listen)
        seen_from, namespace, wan_state = None, None, None
        targets: tuple[Target, ...]
        if state_dir is not None:
            view = from_testbed(state_dir)
            targets, wan_state = view.targets, view.wan_state
            if view.namespaces:
                seen_from = at or targets[0].site
                if seen_from not in view.namespaces:
                    raise ConfigError(f"--at {at!r}: the sites are {', '.join(view.namespaces)}")
                namespace = view.namespaces[seen_from]
        elif cloud:
            if len(cloud) != len(proxy or []):
                raise ConfigError(
                    f"give one --cloud per --proxy ({len(proxy or [])} proxies, "
                    f"{len(cloud)} clouds), in the same order"
                )
            pairs = list(zip(proxy or [], cloud, strict=True))
            targets = from_clouds(pairs, clouds_file, allow_http=allow_http)
        else:
            if not password and len(proxy or []) <= 1:
                raise ConfigError("give the operator's password (--os-password or OS_PASSWORD)")
            creds = Credentials(username, password, project, user_domain, project_domain)
            targets = from_urls(proxy or [], creds, auth_path, allow_http=allow_http)
        sock = socket.create_server((host, port), family=_family(host))
        if namespace is not None:  # the listener stays here; the streams leave from the site
            from edgescope.testbed.wan.netns import enter

            enter(namespace)
        board = Console(targets, seen_from=seen_from, wan_state=wan_state)
        app = console_app(board, allowed_hosts=allow_host or ())
    except (EdgescopeError, OSError) as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    if not ipaddress.ip_address(host).is_loopback:
        _err.print(f"[yellow]warning:[/yellow] the console listens on {host} in plain http: "
                   "its session token crosses the network in clear")  # fmt: skip
    asyncio.run(_serve(app, board, sock, seen_from))


async def _serve(
    app: web.Application, board: Console, sock: socket.socket, seen_from: str | None
) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(started_line(board.page_url(f"http://{shown}:{port}/"), seen_from), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ConfigError(f"--listen {text!r}: expected IP:PORT, e.g. 127.0.0.1:8470") from None
    if not sep or not 0 <= number < 65536:
        raise ConfigError(f"--listen {text!r}: expected IP:PORT, e.g. 127.0.0.1:8470")
    return host, number


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def register(app: typer.Typer) -> None:
    """Add ``edgescope console`` to the top-level app."""
    app.command(name="console")(console)
