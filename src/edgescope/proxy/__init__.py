"""The per-site scope proxy (docs/proxy.md): routes every service call by the scope it carries.

Pure decisions: ``config`` (site TOML), ``carriers`` (X-Scope, token piggyback, baggage,
request-id correlation), ``route`` (scope -> plan), ``peer_auth`` (HMAC hop markers),
``breaker``, ``merge`` (combine ``&`` answers). I/O: ``server`` (the aiohttp app),
``dispatch`` (runs a plan with scope-lang's evaluator), ``forward`` (upstream client),
``body`` (tee and spool), ``identity``, ``metrics``. Kept import-free so that importing one
module does not pull in the server.

    from edgescope.proxy.config import load_config
    from edgescope.proxy.server import SiteProxy
    proxy = SiteProxy(load_config("paris.toml")); await proxy.start()
"""
