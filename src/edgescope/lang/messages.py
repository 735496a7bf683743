"""Every error message the parser can give, as ``(message, [bad inputs])`` rows.

:mod:`edgescope.lang.parse` turns a lark exception into a *key* (what the parser would
have accepted there, or a special case such as an unterminated quote) and looks the key up
in an index built from these rows: each bad input is parsed once and its key is mapped to
the row's message (the idea of lark's ``match_examples``). Tests check every row, and
docs/scope-lang.md lists them (a test keeps it in sync).

    >>> SYNTAX_MESSAGES[0].message, SYNTAX_MESSAGES[0].inputs[1]
    ("expected '{' to open the scope", 'nova: Paris')

Messages with ``{fields}`` are templates filled in where they are raised.
"""

from __future__ import annotations

from typing import NamedTuple

from edgescope.lang.limits import MSG_CONTROL, MSG_TOO_DEEP, MSG_TOO_LONG, Limits


class MessageRow(NamedTuple):
    message: str
    inputs: tuple[str, ...]
    limits: Limits | None = None
    """Small limits used to show the example (the defaults would need huge inputs)."""


MSG_BAD_NAME_CHAR = (
    "names use letters, digits, '-', '_' and '.'; quote other site names, like \"São Paulo\""
)

MSG_RADIUS = "the radius of around() must be more than 0 ms and at most {max} ms, not {radius} ms"
MSG_JSON_RADIUS = 'the radius of around() is a number of milliseconds such as "25ms", not {value!r}'
MSG_NEAREST_COUNT = "nearest() takes 2 to {max} sites, not {count}"

SYNTAX_MESSAGES: tuple[MessageRow, ...] = (
    MessageRow("expected '{' to open the scope", ("", "nova: Paris", "Paris")),
    MessageRow("expected a service name or '}'", ("{", "{: Paris}", "{& Paris}")),
    MessageRow(
        "expected a service name after ','", ("{nova: Paris,}", "{nova: Paris, , image: a}")
    ),
    MessageRow("expected ':' after the service name", ("{nova Paris}", "{nova}", "{nova, a: b}")),
    MessageRow(
        "expected a site name, a quoted site name or '('",
        ("{nova:}", "{nova: & Paris}", "{nova: Paris & }", "{nova: Paris | }", "{nova: ()}"),
    ),
    MessageRow(
        "expected '&', '|', ',' or '}' after a site",
        ("{nova: Paris", "{nova: (Paris) Corte}", "{nova: Paris (Corte)}", '{nova: "a" "b"}'),
    ),
    MessageRow(
        "expected '&', '|' or ')'", ("{nova: (Paris", "{nova: (Paris, a: b)}", "{nova: (a}")
    ),
    MessageRow("expected nothing after the closing '}'", ("{nova: Paris} x", "{}}", "{} {}")),
    MessageRow(
        'a site name with spaces must be quoted, like "New York"',
        ("{nova: New York}", "{nova: Paris & Le Havre}"),
    ),
    MessageRow(
        MSG_BAD_NAME_CHAR,
        ("{nova: Pa$ris}", "{nova: São}", "{n@va: Paris}", "{nova: @}"),
    ),
    MessageRow("unterminated quoted site name", ('{nova: "Paris}', '{nova: "a\\"}')),
)
"""Errors of the grammar itself, found by lark and mapped at the parser boundary."""

MSG_TOO_MANY_SITES = "the scope names {count} sites; the limit is {limit}"
MSG_UNKNOWN_SERVICE = "unknown service {name!r}{hint}"
MSG_SERVICE_TWICE = "service {service!r} is given twice (as {first!r} and as {name!r})"
MSG_SITE_TWICE = "site {site!r} appears twice in the expression for {service}"
MSG_EMPTY_SITE = "a site name cannot be empty"
MSG_BAD_JSON = "invalid JSON scope: {detail}"
MSG_JSON_BAD_VALUE = (
    'the value for {key!r} must be an expression string, {{"and": [...]}} or {{"or": [...]}}'
)

OTHER_MESSAGES: tuple[MessageRow, ...] = (
    MessageRow(MSG_TOO_LONG, ("{nova: Paris, glance: Corte}",), Limits(max_length=16)),
    MessageRow(MSG_CONTROL, ("{nova: Paris\r\nX-Admin: 1}", "{nova: Pa\x00ris}")),
    MessageRow(MSG_TOO_DEEP, ("{nova: (((Paris)))}",), Limits(max_depth=3)),
    MessageRow(MSG_TOO_MANY_SITES, ("{nova: a & b, glance: c | d}",), Limits(max_sites=3)),
    MessageRow(MSG_UNKNOWN_SERVICE, ("{novaa: Paris}", "{frobnicator: Paris}")),
    MessageRow(MSG_SERVICE_TWICE, ("{nova: Paris, compute: Corte}",)),
    MessageRow(MSG_SITE_TWICE, ("{nova: Paris & Corte | Paris}",)),
    MessageRow(MSG_EMPTY_SITE, ('{nova: ""}', '{"compute": {"and": ["", "a"]}}')),
    MessageRow(MSG_BAD_NAME_CHAR, ('{"no va": "Paris"}',)),
    MessageRow(MSG_BAD_JSON, ('{"compute": "Paris",}', '{"compute": "Paris"')),
    MessageRow(MSG_JSON_BAD_VALUE, ('{"compute": 3}', '{"compute": {"xor": ["a"]}}')),
)
"""Errors found around the grammar: limits, services, repeated names, the JSON form."""
