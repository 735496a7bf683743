"""edgescope.catalog: the sites of a deployment and the services each one runs.

>>> from edgescope.catalog import Catalog, check_scope
>>> from edgescope.lang import parse_scope
>>> check_scope(parse_scope("{nova: Paris}"), Catalog.from_sites(["Paris", "Corte"]))
"""

from edgescope.catalog._catalog import Catalog, Site, load_rules
from edgescope.lang.check import check_scope
from edgescope.lang.rules import DEFAULT_RULES, Rule

__all__ = ["DEFAULT_RULES", "Catalog", "Rule", "Site", "check_scope", "load_rules"]
