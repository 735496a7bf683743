"""The seed's scenarios, end to end, with the real ``openstack`` CLI against a 3-site testbed.

Each scenario drives the CLI like a user would, then checks real state at the sites (the
server exists at Paris and its image id is Corte's, ...) and, where the route matters, the
proxies' JSON access logs. A failed check raises :class:`ScenarioFailed`. The pytest tests in
``tests/integration`` call these functions one by one; :func:`run_scenarios` runs them all in
order.

    >>> results = run_scenarios(handle_for(deployment))
    >>> all(r.ok for r in results)
"""

from __future__ import annotations

import secrets
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgescope.errors import EdgescopeError
from edgescope.openstack.cli_runner import Cli, CliFailed, LogTail
from edgescope.openstack.testbed_handle import TestbedHandle, handle_for

PARIS, CORTE, MARSEILLE = "Paris", "Corte", "Marseille"
BOOT = ("--flavor", "m1.tiny", "--nic", "none", "--wait")


class ScenarioFailed(EdgescopeError):
    """A scenario's check did not hold; the message says what was expected and what was seen."""


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class Context:
    """What scenarios share: the CLI, the sites, a run id for unique names, cached ids."""

    testbed: TestbedHandle
    cli: Cli
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    _image_ids: dict[str, str] = field(default_factory=dict)
    servers: dict[str, str] = field(default_factory=dict)
    """A server id of the demo user at each site, once one was booted."""
    _roomy: set[str] = field(default_factory=set)
    created: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, cloud, id) of everything the scenarios created, for :meth:`cleanup`."""

    @classmethod
    def create(cls, testbed: TestbedHandle) -> Context:
        return cls(testbed, Cli(testbed.clouds_yaml))

    def new_uuid(self) -> str:
        return str(uuid.uuid4())

    def name(self, what: str) -> str:
        return f"es-{what}-{self.run_id}"

    def user(self, site: str) -> str:
        """The site's non-admin cloud (project demo)."""
        return self.testbed.cloud_name(site, admin=False)

    def admin(self, site: str) -> str:
        return self.testbed.cloud_name(site, admin=True)

    def demo_member(self, site: str, what: str) -> tuple[str, str]:
        """A new user of ``site`` only, member of project demo: (name, password)."""
        name, password = self.name(what), secrets.token_urlsafe(12)
        admin = self.admin(site)
        self.cli.run("user", "create", name, f"--password={password}", "--project", "demo",
                     cloud=admin)  # fmt: skip
        self.created.append(("user", admin, name))
        self.cli.run("role", "add", "--user", name, "--project", "demo", "member", cloud=admin)
        return name, password

    def debian_id(self, site: str) -> str:
        """The id of the ``debian`` image *at* ``site`` (each site assigns its own)."""
        if site not in self._image_ids:
            self._image_ids[site] = self.cli.value(
                "image", "show", "debian", "-c", "id", cloud=self.admin(site)
            )
        return self._image_ids[site]

    def access_log(self, site: str) -> LogTail:
        return LogTail(self.testbed.log_path(site, "proxy"))

    def cleanup(self) -> None:
        """Delete what the scenarios created (servers count against the demo project's quota)."""
        groups: dict[tuple[str, str], list[str]] = {}
        for kind, cloud, resource_id in self.created:
            groups.setdefault((kind, cloud), []).append(resource_id)
        for (kind, cloud), ids in groups.items():
            # one at a time: gentle on nova's SQLite (one writer at a time, testbed.md)
            wait = ("--wait",) if kind == "server" else ()
            self.cli.run(kind, "delete", *wait, *ids, cloud=cloud, check=False)
        self.created.clear()
        self.servers.clear()


def ensure_server(ctx: Context, site: str) -> str:
    """A server of ``site``'s own demo user, booted there natively (no scope)."""
    if site not in ctx.servers:
        ctx.servers[site] = boot(
            ctx, ctx.name(f"at-{site.lower()}"), "--image", "debian", site=site
        )["id"]
    return ctx.servers[site]


CATALOG_HINT = (
    " -- nova at a remote site looks glance/neutron up in the *user's* catalog, which comes "
    "from the identity site (another region): the site's nova.conf needs [glance] and "
    "[neutron] endpoint_override = its own proxy"
)


def remote_list(ctx: Context, *args: str, cloud: str, scope: str) -> Any:
    """``openstack ... -f json`` for a call served by a remote nova, with a hint on a known trap."""
    try:
        return ctx.cli.json(*args, cloud=cloud, scope=scope)
    except CliFailed as exc:
        if "EndpointNotFound" in exc.result.stderr:
            raise ScenarioFailed(str(exc) + CATALOG_HINT) from None
        raise


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailed(message)


def boot(ctx: Context, name: str, *args: str, site: str, scope: str | None = None) -> Any:
    """Boot as ``site``'s demo user; the scope, if any, keeps nova at ``site``."""
    if site not in ctx._roomy:
        # Servers that nova on SQLite failed to delete ("database is locked") would otherwise
        # eat the default quota of 10 instances across test sessions.
        ctx.cli.run("quota", "set", "--instances", "200", "--cores", "200", "--ram", "204800",
                    "demo", cloud=ctx.admin(site))  # fmt: skip
        ctx._roomy.add(site)
    server = ctx.cli.json("server", "create", name, *BOOT, *args, cloud=ctx.user(site), scope=scope)
    ctx.created.append(("server", ctx.admin(site), server["id"]))
    expect(server.get("status") == "ACTIVE", f"{name} is {server.get('status')}, not ACTIVE")
    return server


def server_image_id(ctx: Context, server_id: str, site: str) -> str:
    """The image id of a server, read at its own site with no scope."""
    shown = ctx.cli.json("server", "show", server_id, cloud=ctx.admin(site))
    image = shown.get("image")
    if isinstance(image, dict):
        return str(image.get("id", ""))
    return str(image or "").rsplit("(", 1)[-1].rstrip(")").strip()


def ids_at(ctx: Context, site: str, what: str = "server") -> set[str]:
    """Every id of a resource kind at ``site``, listed by its admin with no scope."""
    extra = ("--all-projects",) if what == "server" else ()
    return {row["ID"] for row in ctx.cli.json(what, "list", *extra, cloud=ctx.admin(site))}


def small_image_file() -> Path:
    with tempfile.NamedTemporaryFile(prefix="edgescope-", suffix=".img", delete=False) as handle:
        handle.write(b"\0" * 4096)
    return Path(handle.name)


# --- the scenarios -----------------------------------------------------------------------


def scenario_one_dc(ctx: Context) -> str:
    """1-DC: boot in Paris with no scope; list the VMs in Corte with {nova: Corte}."""
    at_paris = ensure_server(ctx, PARIS)
    at_corte = ensure_server(ctx, CORTE)  # Corte's own user, at Corte: the VMs to find there
    before = ids_at(ctx, CORTE)  # others may create or delete servers at Corte meanwhile
    listed = {
        row["ID"]
        for row in remote_list(
            ctx, "server", "list", "--all-projects", cloud=ctx.admin(PARIS), scope="{nova: Corte}"
        )
    }
    expect(
        at_corte in listed and at_paris not in listed,
        f"{{nova: Corte}} listed {sorted(listed)}; expected {at_corte} and nothing of Paris",
    )
    expect(at_paris in ids_at(ctx, PARIS), "the unscoped server is not at Paris")
    expect(
        listed <= before | ids_at(ctx, CORTE),
        "{nova: Corte} listed servers that are not at Corte",
    )
    return (
        f"booted {at_paris[:8]} at Paris with no scope; Paris's admin listed Corte's "
        f"{len(listed)} server(s) with {{nova: Corte}}, all of them at Corte"
    )


def scenario_x_dc(ctx: Context) -> str:
    """x-DC: boot at Paris with Corte's image; nova at Paris fetched it from Corte's glance."""
    corte_image = ctx.debian_id(CORTE)
    paris_tail, corte_tail = ctx.access_log(PARIS), ctx.access_log(CORTE)
    server = boot(
        ctx,
        ctx.name("xdc"),
        "--image",
        "debian",
        site=PARIS,
        scope="{nova: Paris, glance: Corte}",
    )
    image_id = server_image_id(ctx, server["id"], PARIS)
    expect(server["id"] in ids_at(ctx, PARIS), "the server is not at Paris")
    expect(
        image_id == corte_image and image_id != ctx.debian_id(PARIS),
        f"server image {image_id}; Corte's debian is {corte_image}",
    )
    # nova's own call: it carries the user's token (scope piggybacked), not the CLI's X-Scope.
    by_nova = [
        r
        for r in paris_tail.json_records()
        if r.get("service") == "image"
        and r.get("carrier") == "token"
        and corte_image in str(r.get("path"))
        and CORTE in (r.get("sites") or [])
    ]
    expect(bool(by_nova), "no image call with the token-carried scope went from Paris to Corte")
    served = [
        r
        for r in corte_tail.json_records()
        if r.get("service") == "image"
        and r.get("from_peer") == PARIS
        and corte_image in str(r.get("path"))
        and r.get("status") == 200
    ]
    expect(bool(served), "Corte's proxy served no image call from Paris for that image")
    return (
        f"{server['name']} ACTIVE at Paris with Corte's image {corte_image[:8]}; Paris proxy "
        f"sent nova's GET {by_nova[0]['path']} to Corte ({len(served)} call(s) served there)"
    )


def star_dc_user_create(ctx: Context) -> str:
    """`openstack user create` with {keystone: Paris & Corte} creates the user at both sites."""
    alice = ctx.name("alice")
    password = secrets.token_urlsafe(12)
    ctx.created += [("user", ctx.admin(PARIS), alice), ("user", ctx.admin(CORTE), alice)]
    ctx.cli.run("user", "create", alice, f"--password={password}", cloud=ctx.admin(PARIS),
                scope="{keystone: Paris & Corte}")  # fmt: skip
    for site in (PARIS, CORTE):
        names = set(ctx.cli.value("user", "list", "-c", "Name", cloud=ctx.admin(site)).split())
        expect(alice in names, f"user {alice} was not created at {site}")
    return f"user {alice} created at Paris and Corte"


def star_dc_server_list(ctx: Context) -> str:
    """`openstack server list` with {nova: Paris & Corte} is the union, with each server's Site."""
    wanted = {site: ensure_server(ctx, site) for site in (PARIS, CORTE)}
    rows = remote_list(
        ctx,
        "server",
        "list",
        "--all-projects",
        cloud=ctx.admin(PARIS),
        scope="{nova: Paris & Corte}",
    )
    sites = {row["ID"]: row.get("Site") for row in rows}
    for site in (PARIS, CORTE):
        mine = {sid for sid, s in sites.items() if s == site}
        expect(mine <= ids_at(ctx, site), f"servers labelled {site} are not all at {site}")
    expect(
        all(sites.get(sid) == site for site, sid in wanted.items()),
        f"the merged list should show {wanted} with their sites, got {sites}",
    )
    per_site = {site: sum(1 for s in sites.values() if s == site) for site in (PARIS, CORTE)}
    return f"server list merged {per_site} servers, each with its Site"


def star_dc_image_create(ctx: Context) -> str:
    """`openstack image create` with {glance: Paris & Corte} stores the image at both sites.

    ``--id`` gives both copies the same id, so the upload that follows the create (a second
    request, to that id) finds the image at both sites with no id translation.
    """
    image_id = ctx.new_uuid()
    ctx.created += [("image", ctx.admin(PARIS), image_id), ("image", ctx.admin(CORTE), image_id)]
    ctx.cli.run("image", "create", ctx.name("img"), "--id", image_id,
                "--file", str(small_image_file()), "--disk-format", "raw",
                "--container-format", "bare", cloud=ctx.admin(PARIS),
                scope="{glance: Paris & Corte}")  # fmt: skip
    for site in (PARIS, CORTE):
        status = ctx.cli.value("image", "show", image_id, "-c", "status", cloud=ctx.admin(site))
        expect(status == "active", f"image {image_id} at {site} is {status!r}, not active")
    return f"image {image_id[:8]} stored and active at Paris and Corte"


def scenario_star_dc(ctx: Context) -> str:
    """*-DC: user create, server list and image create at Paris & Corte."""
    done, failed = [], []
    for step in (star_dc_user_create, star_dc_server_list, star_dc_image_create):
        try:
            done.append(step(ctx))
        except (ScenarioFailed, CliFailed) as exc:
            failed.append(f"{step.__name__}: {exc}")
    if failed:
        raise ScenarioFailed("; ".join(failed + done))
    return "; ".join(done)


def image_only_at(ctx: Context, site: str) -> str:
    """A new public image stored at ``site`` alone (``debian`` is at every site, one
    replicated resource since the testbed adopts it: Corte would serve its own copy)."""
    image_id = ctx.new_uuid()
    ctx.created.append(("image", ctx.admin(site), image_id))
    ctx.cli.run("image", "create", ctx.name(f"only-{site}"), "--id", image_id, "--public",
                "--file", str(small_image_file()), "--disk-format", "raw",
                "--container-format", "bare", cloud=ctx.admin(site))  # fmt: skip
    return image_id


def scenario_or(ctx: Context) -> str:
    """|: boots when Corte lacks the image, when Corte's glance is stopped; fails clearly."""
    scope = "{nova: Paris, glance: Corte | Marseille}"
    only_marseille = image_only_at(ctx, MARSEILLE)
    s1 = boot(ctx, ctx.name("or-missing"), "--image", only_marseille, site=PARIS, scope=scope)
    expect(
        server_image_id(ctx, s1["id"], PARIS) == only_marseille,
        "the fallback server does not use Marseille's image",
    )
    ctx.testbed.stop_service(CORTE, "glance")
    try:
        s2 = boot(
            ctx,
            ctx.name("or-stopped"),
            "--image",
            only_marseille,
            site=PARIS,
            scope=scope,
        )
        expect(
            server_image_id(ctx, s2["id"], PARIS) == only_marseille,
            "with Corte's glance stopped, the server does not use Marseille's image",
        )
        ctx.testbed.stop_service(MARSEILLE, "glance")
        try:
            failed = ctx.cli.run(
                "server",
                "create",
                ctx.name("or-neither"),
                "--image",
                only_marseille,
                *BOOT,
                cloud=ctx.user(PARIS),
                scope=scope,
                check=False,
            )
        finally:
            ctx.testbed.start_service(MARSEILLE, "glance")
    finally:
        ctx.testbed.start_service(CORTE, "glance")
    expect(not failed.ok, "booting with neither glance up succeeded")
    expect(
        CORTE in failed.stderr and MARSEILLE in failed.stderr,
        f"the error should name Corte and Marseille: {failed.stderr.strip()[-300:]}",
    )
    expect("Traceback" not in failed.stderr, "the CLI printed a traceback")
    lines = failed.stderr.strip().splitlines()
    said = next((line for line in lines if line.startswith("edgescope:")), lines[-1])
    return (
        "booted from Marseille when Corte lacked the image and when Corte's glance was "
        f"stopped; with both stopped: {said[:200]}"
    )


def scenario_bad_collaboration(ctx: Context) -> str:
    """{nova: Paris, neutron: Corte} is rejected before any request, with the rule's reason."""
    tail = ctx.access_log(PARIS)
    result = ctx.cli.run(
        "server", "list", cloud=ctx.user(PARIS), scope="{nova: Paris, neutron: Corte}", check=False
    )
    expect(not result.ok, "the bad collaboration was accepted")
    expect(
        "same site" in result.stderr and "^" in result.stderr,
        f"no rule explanation with a caret: {result.stderr.strip()[-300:]}",
    )
    # Other clients may use Paris meanwhile: look for this command's scope in the access log.
    ours = [r for r in tail.json_records() if "network" in str(r.get("scope") or "")]
    expect(ours == [], f"a request with the rejected scope reached the Paris proxy: {ours[:1]}")
    return "rejected locally: " + result.stderr.strip().splitlines()[0][:150]


def scenario_identity(ctx: Context) -> str:
    """A user created only at Paris lists Corte's images with a Paris token."""
    name, password = ctx.demo_member(PARIS, "paris-only")
    expect(
        not ctx.cli.run("user", "show", name, cloud=ctx.admin(CORTE), check=False).ok,
        f"{name} unexpectedly exists at Corte",
    )
    as_user = ("--os-username", name, f"--os-password={password}")  # over the demo cloud's
    ids = {
        row["ID"]
        for row in ctx.cli.json(
            *as_user, "image", "list", cloud=ctx.user(PARIS), scope="{glance: Corte}"
        )
    }
    expect(
        ctx.debian_id(CORTE) in ids and ctx.debian_id(PARIS) not in ids,
        "the listed images are not Corte's",
    )
    return f"{name} (Paris only) listed {len(ids)} Corte images, including Corte's debian"


SHORT: Sequence[tuple[str, Callable[[Context], str]]] = (
    ("1-DC", scenario_one_dc),
    ("x-DC", scenario_x_dc),
    ("*-DC &", scenario_star_dc),
    ("| fallback", scenario_or),
    ("bad collaboration", scenario_bad_collaboration),
    ("identity", scenario_identity),
)


def run_scenarios(
    testbed: TestbedHandle | Any, *, report: Callable[[str], None] = print
) -> list[ScenarioResult]:
    """Run every scenario in order with the real CLI; print and return what each did.

    ``testbed`` is a :class:`TestbedHandle` or an :class:`edgescope.testbed.Testbed`.
    """
    handle = testbed if hasattr(testbed, "cloud_name") else handle_for(testbed)
    ctx = Context.create(handle)
    try:
        return _run_all(ctx, report)
    finally:
        ctx.cleanup()


def _run_all(ctx: Context, report: Callable[[str], None]) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    for name, scenario in SHORT:
        started = time.monotonic()
        try:
            detail, ok = scenario(ctx), True
        except (ScenarioFailed, CliFailed) as exc:
            detail, ok = str(exc), False
        result = ScenarioResult(name, ok, time.monotonic() - started, detail)
        report(f"{'ok  ' if ok else 'FAIL'} {name:<18} {result.seconds:5.1f} s  {detail}")
        results.append(result)
    return results
