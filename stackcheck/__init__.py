"""stackcheck: a conformance harness for Atomic/etcd/flannel/Docker/Kubernetes labs."""

__version__ = "0.1.0"
