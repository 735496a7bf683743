"""``edgescope console``: a live web console of the sites' proxies (no central component: any
site, or an operator's machine, runs one). :mod:`targets` says which proxies and with whose
credentials, :mod:`watch` streams their events (``edgescope.observe``), :mod:`picture` makes
sites, links and calls of them (pure), :mod:`app` serves the page and its live updates.

    console = Console(from_testbed(Path("state-wan")).targets)
    web.run_app(console_app(console), host="127.0.0.1", port=8470)
"""
