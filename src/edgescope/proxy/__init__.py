"""edgescope.proxy."""
