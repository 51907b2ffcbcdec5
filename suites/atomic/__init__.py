"""atomic conformance checks."""
