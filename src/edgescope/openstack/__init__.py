"""edgescope.openstack."""
