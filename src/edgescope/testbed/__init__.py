"""edgescope.testbed: real, independent OpenStack sites on one machine, one proxy per site.

    from edgescope.testbed import Testbed
    tb = Testbed.from_state(Path("state"))
    tb.sites["Paris"].cloud            # 'Paris' in tb.clouds_yaml
    tb.stop_service("Corte", "glance")

Runtime code (proxy, lang) never imports this package. ``wan/`` emulates the WAN.
"""

from edgescope.testbed.deployment import SiteInfo, Testbed
from edgescope.testbed.layout import SERVICES, TestbedError
from edgescope.testbed.site import ServiceStatus

__all__ = ["SERVICES", "ServiceStatus", "SiteInfo", "Testbed", "TestbedError"]
