"""The one writer of proxy TOML: what it writes reads back as the same document."""

from __future__ import annotations

import math
import tomllib
from typing import Any

import pytest

import sitekeys
from edgescope.proxy.config import parse_config
from edgescope.proxy.config_file import COMMENT, render_config


def test_a_document_reads_back_the_same() -> None:
    doc: dict[str, Any] = {
        COMMENT: "a header\nof two lines",
        "site": 'Pa"ris\\',
        "listen": "127.0.0.1:0",
        "private_key_file": "/etc/edgescope/site.key",
        "services": [{"type": "image", "prefix": "/image", "backend": "http://127.0.0.1:9"}],
        "peers": [{"name": "Corte", "url": "http://127.0.0.1:8", "connect_timeout": 2.0}],
        "carriers": [],
        "trust": {
            COMMENT: "a table's comment",
            "configured": ["route", "replicas"],
            "sites": {"Corte": {"delegate_roles": ["admin"]}, "Lyon Nord": {"flag": True}},
        },
        "haproxy": {"ports": {"image": 20111, "block-storage": 20117}},
    }
    text = render_config(doc)
    back = tomllib.loads(text)
    expected = {k: v for k, v in doc.items() if k != COMMENT}
    expected["trust"] = {k: v for k, v in doc["trust"].items() if k != COMMENT}
    assert back == expected
    assert text.startswith("# a header\n# of two lines\n")
    assert '[trust.sites."Lyon Nord"]' in text


def test_what_gen_config_and_the_testbeds_write_is_a_valid_proxy_config() -> None:
    text = render_config(
        {
            "site": "Paris",
            "listen": "127.0.0.1:0",
            "private_key": sitekeys.private("Paris"),
            "services": [{"type": "image", "port": 20111, "backend": "http://127.0.0.1:9"}],
        }
    )
    assert parse_config(tomllib.loads(text)).site == "Paris"


@pytest.mark.parametrize("bad", [math.inf, math.nan, None, object()])
def test_a_value_toml_cannot_hold_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"finite|cannot hold"):
        render_config({"site": bad})
