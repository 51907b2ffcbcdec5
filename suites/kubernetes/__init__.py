"""kubernetes conformance checks."""
