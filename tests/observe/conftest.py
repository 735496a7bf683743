"""The proxy's loopback sites (``sites``, ``refused_url``) for the tests of edgescope.observe."""

from __future__ import annotations

from loopback import proxy_fixtures

sites = proxy_fixtures().sites
refused_url = proxy_fixtures().refused_url
