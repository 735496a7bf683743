"""Hypothesis strategies for scope ASTs: flat (as the parser builds them), distinct sites."""

from __future__ import annotations

from hypothesis import strategies as st

from edgescope.lang import DEFAULT_REGISTRY, And, Expr, Or, Scope, ServiceScope, SiteRef

PLAIN = st.from_regex(r"[A-Za-z0-9._-]{1,8}", fullmatch=True)
QUOTED = st.text(
    st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"], blacklist_characters="\x85"),
    min_size=1,
    max_size=8,
)
SITE_NAMES = st.one_of(PLAIN, PLAIN, QUOTED)


def flat_exprs(
    names: st.SearchStrategy[str] = SITE_NAMES, max_leaves: int = 8
) -> st.SearchStrategy[Expr]:
    """Expressions whose sites are distinct, with And/Or kept flat like the parser's."""

    def build(draw: st.DrawFn) -> Expr:
        sites = draw(st.lists(names, min_size=1, max_size=max_leaves, unique=True))
        return _shape(draw, [SiteRef(s) for s in sites], None)

    return st.composite(build)()


def _shape(draw: st.DrawFn, leaves: list[Expr], parent: type | None) -> Expr:
    if len(leaves) == 1:
        return leaves[0]
    kinds = [k for k in (And, Or) if k is not parent]
    kind = draw(st.sampled_from(kinds))
    cuts = sorted(draw(st.sets(st.integers(1, len(leaves) - 1), min_size=1)))
    groups = [leaves[a:b] for a, b in zip([0, *cuts], [*cuts, len(leaves)], strict=True)]
    operands = tuple(_shape(draw, group, kind) for group in groups)
    return kind(operands)


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    services = draw(st.lists(st.sampled_from(DEFAULT_REGISTRY.services), unique=True, max_size=4))
    return Scope(tuple(ServiceScope(s, draw(flat_exprs(max_leaves=5))) for s in services))
