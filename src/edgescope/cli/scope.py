"""``edgescope scope check|explain``: parse, check and describe a scope. Thin: the work is in
:mod:`edgescope.lang` (parsing, checks, printing) and :mod:`edgescope.catalog`.

    $ edgescope scope check --sites Paris,Corte,Nice '{nova: Paris&Corte, glance: Corte||Nice}'
    {compute: Paris & Corte, image: Corte | Nice}
    $ edgescope scope explain '{nova: Paris & Corte, glance: Corte | Marseille}'
    $ edgescope scope explain --at Paris --rtt Marseille=10,Corte=20 '{nova: around(Paris, 15ms)}'

Errors (syntax, limits, checks, a bad catalog file) go to stderr with the caret context,
exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.tree import Tree

from edgescope.catalog import Catalog, load_rules
from edgescope.errors import ConfigError, ScopeError
from edgescope.lang import (
    DEFAULT_REGISTRY,
    DEFAULT_RULES,
    And,
    Expr,
    Scope,
    SiteRef,
    check_scope,
    parse_scope,
    quote_site,
    scope_to_json,
    unparse,
)
from edgescope.lang.ast import Around, Nearest
from edgescope.lang.network import NetworkView, needs_network, resolve_scope

app = typer.Typer(name="scope", help="Check and explain scopes (scope-lang).", no_args_is_help=True)

ScopeText = Annotated[str, typer.Argument(help="The scope, e.g. '{nova: Paris, glance: Corte}'.")]
SitesOption = Annotated[
    str | None,
    typer.Option(
        "--sites", envvar="EDGESCOPE_SITES", help="Known sites, comma-separated: Paris,Corte."
    ),
]
CatalogOption = Annotated[
    Path | None,
    typer.Option("--catalog", envvar="EDGESCOPE_CATALOG", help="Catalog TOML file."),
]
RulesOption = Annotated[
    list[Path] | None,
    typer.Option("--rules", help="Extra bad-collaboration rules (TOML); repeatable."),
]


@app.command()
def check(
    scope: ScopeText,
    sites: SitesOption = None,
    catalog: CatalogOption = None,
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the canonical JSON AST.")] = False,
) -> None:
    """Parse SCOPE, check it against the catalog if one is given, print its canonical form."""
    parsed = _load(scope, sites, catalog, rules)
    if as_json:
        typer.echo(json.dumps(scope_to_json(parsed), ensure_ascii=False))
    else:
        typer.echo(unparse(parsed))


@app.command()
def explain(
    scope: ScopeText,
    sites: SitesOption = None,
    catalog: CatalogOption = None,
    rules: RulesOption = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Resolve around()/nearest() as the proxy of this site would."),
    ] = None,
    rtt: Annotated[
        str | None,
        typer.Option(
            "--rtt", help="RTTs measured from the --at site, in ms: Marseille=10,Corte=20."
        ),
    ] = None,
) -> None:
    """Say, for each service, where a call will go: in plain words and as a tree.

    With ``--at``, ``around``/``nearest`` are first resolved from the ``--rtt`` given (a site
    left out has an unknown RTT: never inside ``around``, last in ``nearest``)."""
    parsed = _load(scope, sites, catalog, rules)
    if at is not None:
        parsed = _resolve_at(parsed, at, rtt, sites, catalog)
        typer.echo(f"at {at}, now: {unparse(parsed)}")
    elif rtt is not None:
        _fail("--rtt needs --at: the site the RTTs are measured from")
    typer.echo(describe(parsed))
    Console(highlight=False, soft_wrap=True).print(scope_tree(parsed))


def _resolve_at(
    scope: Scope, at: str, rtt_text: str | None, sites: str | None, catalog_file: Path | None
) -> Scope:
    rtts = _parse_rtts(rtt_text or "")
    names: list[str] = [at]
    services = None
    if catalog_file is not None:
        catalog = Catalog.from_toml(catalog_file)
        names += catalog.site_names
        services = {site: catalog.services_of(site) for site in catalog.site_names}
    elif sites is not None:
        names += [name.strip() for name in sites.split(",") if name.strip()]
    names += list(rtts)
    known = tuple(dict.fromkeys(names))
    if not needs_network(scope):
        return scope
    try:
        return resolve_scope(scope, NetworkView(at, known, {at: rtts}, services=services))
    except ScopeError as err:
        _fail(err.render())


def _parse_rtts(text: str) -> dict[str, float]:
    """``Marseille=10,Corte=20`` -> {"Marseille": 10.0, "Corte": 20.0}; exit 2 when bad."""
    rtts: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            ms = float(value.strip().removesuffix("ms"))
        except ValueError:
            ms = math.nan
        if not sep or not name.strip() or not math.isfinite(ms) or ms < 0:
            _fail(f"--rtt: {item!r} is not SITE=MS (a number of milliseconds, 0 or more)")
        rtts[name.strip()] = ms
    return rtts


def describe(scope: Scope) -> str:
    """``compute: run in Paris and in Corte, concurrently; image: try Corte, then Marseille;
    everything else: local``."""
    parts = [f"{entry.service}: {_sentence(entry.expr)}" for entry in scope.entries]
    parts.append("everything else: local" if parts else "everything: local")
    return "; ".join(parts)


def _sentence(expr: Expr) -> str:
    if isinstance(expr, SiteRef):
        return f"run in {quote_site(expr.name)}"
    if isinstance(expr, Around | Nearest):
        return _network_words(expr)
    if isinstance(expr, And):
        return "run in " + " and in ".join(_branch(op) for op in expr.operands) + ", concurrently"
    return "try " + ", then ".join(_alternative(op) for op in expr.operands)


def _network_words(expr: Around | Nearest) -> str:
    if isinstance(expr, Around):
        radius = format(expr.radius_ms.normalize(), "f")
        return (
            f"run in every site within {radius} ms of {quote_site(expr.center.name)}"
            " (measured when the call is made), concurrently"
        )
    names = ", ".join(quote_site(site.name) for site in expr.operands)
    return f"try {names}, nearest first (measured from the entry site when the call is made)"


def _branch(expr: Expr) -> str:
    if isinstance(expr, SiteRef):
        return quote_site(expr.name)
    return f"({_sentence(expr)})"


def _alternative(expr: Expr) -> str:
    if isinstance(expr, SiteRef):
        return quote_site(expr.name)
    if isinstance(expr, And):
        return " and ".join(_branch(op) for op in expr.operands) + " concurrently"
    return f"({_sentence(expr)})"


def scope_tree(scope: Scope) -> Tree:
    """A rich tree: one branch per service, ``&`` and ``|`` nodes labelled in words."""
    tree = Tree("scope", guide_style="dim")
    for entry in scope.entries:
        label = entry.service
        if entry.written_as and entry.written_as.lower() != entry.service:
            label += f" (written {entry.written_as})"
        _add(tree.add(f"[bold]{label}[/bold]"), entry.expr)
    tree.add("[dim]every other service: local (the calling site)[/dim]")
    return tree


def _add(node: Tree, expr: Expr) -> None:
    if isinstance(expr, SiteRef):
        node.add(f"site [cyan]{_escape(quote_site(expr.name))}[/cyan]")
        return
    if isinstance(expr, Around | Nearest):
        node.add(f"[magenta]{_escape(_network_words(expr))}[/magenta]")
        return
    if isinstance(expr, And):
        child = node.add("[green]&[/green] all of, concurrently")
    else:
        child = node.add("[yellow]|[/yellow] first success, in order")
    for operand in expr.operands:
        _add(child, operand)


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def _load(
    text: str, sites: str | None, catalog_file: Path | None, rules: list[Path] | None
) -> Scope:
    """Parse and check, or exit 2 with the error on stderr."""
    try:
        if sites is not None and catalog_file is not None:
            raise ConfigError("give --sites or --catalog, not both")
        catalog: Catalog | None = None
        if catalog_file is not None:
            catalog = Catalog.from_toml(catalog_file)
        elif sites is not None:
            names = [name.strip() for name in sites.split(",") if name.strip()]
            if not names:
                raise ConfigError("--sites is empty: list site names, e.g. --sites Paris,Corte")
            catalog = Catalog.from_sites(names)
        registry = catalog.registry if catalog else DEFAULT_REGISTRY
        all_rules = DEFAULT_RULES + tuple(
            rule for path in rules or () for rule in load_rules(path, registry)
        )
        scope = parse_scope(text, registry=registry)
        if catalog is not None:
            check_scope(scope, catalog, all_rules)
        return scope
    except ScopeError as err:
        _fail(err.render())
    except ConfigError as err:
        _fail(str(err))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
