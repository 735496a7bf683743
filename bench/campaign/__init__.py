"""A randomized fault campaign with an independent checker (issue 24): ``python -m bench.campaign``.

Modules: :mod:`history` (operations and faults as JSON lines), :mod:`checker` (a pure function
from history and the sites' observed state to anomalies), :mod:`schedule` (the seeded fault
schedule), :mod:`clients` (the real ``openstack`` CLI at each site, and what the checker reads
back), ``__main__`` (the driver on the WAN testbed).
"""
