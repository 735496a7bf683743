"""edgescope.testbed."""
