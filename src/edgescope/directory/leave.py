"""A site leaves the edge: its signed "left" entry, pushed to every site it knows.

Works with the site's proxy stopped -- what an operator does when retiring a site: the entry
is signed with the site's own key (a higher version than any it published), kept in its
``directory.json`` (a restart publishes "up" again: the site is back), and pushed to the
sync endpoint of the sites it knew and of its seeds, signed with the site's key like any
sync; from there it spreads like any entry.

    entry, reached = asyncio.run(leave(load_config(Path("paris.toml"))))
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence

import aiohttp

from edgescope.directory.gossip import SYNC_TIMEOUT, Directory, DirectoryConfig, sign_sync
from edgescope.directory.model import Entry
from edgescope.errors import ConfigError
from edgescope.proxy.config import ProxyConfig
from edgescope.proxy.keys import Ed25519PrivateKey
from edgescope.proxy.protocol import DIRECTORY_SYNC_PATH
from edgescope.proxy.sender import client_tls


async def leave(config: ProxyConfig, timeout: float = SYNC_TIMEOUT) -> tuple[Entry, list[str]]:
    """Sign this site's "left" entry and push it; returns it and the URLs that took it."""
    table = config.extension_tables.get("directory")
    if table is None:
        raise ConfigError(f"{config.site}'s config has no [directory] table: nothing to leave")
    settings = DirectoryConfig.parse(table, config.base_dir)
    directory = Directory(
        config.site, config.private_key, settings, [s.type for s in config.services]
    )
    directory.load()
    entry = directory.publish("left")
    urls = directory.partner_urls()
    reached = await announce(entry, config.private_key, urls, client_tls(config.tls), timeout)
    return entry, reached


async def announce(
    entry: Entry,
    key: Ed25519PrivateKey,
    urls: Sequence[str],
    context: ssl.SSLContext | None,
    timeout: float,
) -> list[str]:
    """POST ``entry``, signed with the site's ``key``, to the sync endpoint of each of
    ``urls``; the URLs that took it."""
    data = json.dumps({"entries": [entry.to_json()], "self": entry.to_json()}).encode()
    headers = {"Content-Type": "application/json"}
    limits = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=limits) as session:

        async def push(url: str) -> bool:
            target = url.rstrip("/") + DIRECTORY_SYNC_PATH
            try:
                signed = {**headers, **sign_sync(key, entry.site, data)}
                async with session.post(
                    target, data=data, headers=signed, ssl=context or True
                ) as answer:
                    return answer.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False

        took = await asyncio.gather(*(push(url) for url in urls))
    return [url for url, ok in zip(urls, took, strict=True) if ok]
