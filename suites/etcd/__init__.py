"""etcd conformance checks."""
