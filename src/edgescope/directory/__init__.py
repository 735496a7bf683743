"""The signed site directory, spread proxy to proxy: sites learn about each other with no
central component (docs/scale.md). :mod:`model` is the pure part (endorsements, entries,
revocations, the merge rule); :mod:`gossip` is the proxy extension that spreads it.

    directory = Directory.from_config(config, DirectoryConfig.parse(table, base_dir))
    proxy = SiteProxy(config, extensions=[directory])
"""
