"""Proxy extensions that let operators see the calls: live events for the console
(:mod:`events`, shapes and bounded feed in :mod:`feed`) and OpenTelemetry traces
(:mod:`tracing`). Both join the proxy as extensions (``proxy/extension.py``).

    events = Events("Paris", EventsConfig.parse(table), replicas=replicas)
    proxy = SiteProxy(config, extensions=[replicas, events])
"""
