"""flannel conformance checks."""
