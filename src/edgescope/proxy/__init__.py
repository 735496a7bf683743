"""The per-site scope proxy (docs/proxy.md): routes every service call by the scope it carries.

Pure decisions: ``config`` (site TOML), ``carriers`` (X-Scope, token piggyback, baggage,
request-id correlation), ``ingress`` (checks before routing), ``route`` (scope -> plan),
``protocol`` (the hop marker: headers signed with the sending site's Ed25519 key, ``keys``,
one signature per batch of hops, ``batchsign``), ``breaker``, ``outcome`` (the
strict/eventual rule), ``merge`` (combine ``&`` answers). I/O: ``server`` (the aiohttp app
and its listeners, among them ``peer_listen``'s, mutual TLS with ``[tls]``), ``dispatch``
(runs a plan with scope-lang's evaluator), ``sender`` (one branch: the local backend, or a
peer proxy over TLS with a signed hop), ``siteclient`` (the one way a request reaches a
site: ``forward``'s upstream client, or ``memory``'s in-memory transport for the engine's
unit tests), ``body`` (tee and
spool), ``identity``, ``delegation``, ``probes``, ``metrics``; ``extension`` is how optional
parts (replicas, events, tracing, the directory) join a call. Kept import-free so that
importing one module does not pull in the server.

    from edgescope.proxy.config import load_config
    from edgescope.proxy.server import SiteProxy
    proxy = SiteProxy(load_config("paris.toml")); await proxy.start()
"""
