"""docker conformance checks."""
