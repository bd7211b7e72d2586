"""Foreign map formats: one module per format, converting at the boundary."""
