"""edgescope: collaboration by composition for independent edge OpenStack sites.

A request carries a *scope* (``{nova: Paris, glance: Corte | Marseille}``) saying which
site's instance of each service serves it; a proxy in front of every site's services
reads it and routes each call, including the services' own calls to each other.

Sub-packages name the architecture: ``lang`` (the pure scope language), ``catalog``
(sites and the services they run), ``proxy`` (the per-site router), ``openstack``
(the OpenStackClient plugin and Keystone glue), ``testbed`` (real multi-site OpenStack
and an emulated WAN, for tests and the demo; runtime code never imports it).
"""

from edgescope.errors import (
    ConfigError,
    EdgescopeError,
    ScopeCheckError,
    ScopeError,
    ScopeLimitError,
    ScopeSyntaxError,
    SiteUnreachable,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "EdgescopeError",
    "ScopeCheckError",
    "ScopeError",
    "ScopeLimitError",
    "ScopeSyntaxError",
    "SiteUnreachable",
    "__version__",
]
