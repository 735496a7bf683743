"""edgescope.catalog."""
