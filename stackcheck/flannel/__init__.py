"""flannel: its data model wherever it is kept, ``subnet.env`` and the host's plumbing.

- :mod:`stackcheck.flannel.model`: the network config and leases (flannel's key and value
  formats, dual-stack, IPv6), ``subnet.env``, ``ip -j`` output, the VXLAN MTU arithmetic.
- :mod:`stackcheck.flannel.etcd_store`: etcd mode (v3 keyspace) and the v2-store probe.
- :mod:`stackcheck.flannel.kube`: Kubernetes mode (Node annotations, podCIDR, ConfigMap).
- :mod:`stackcheck.flannel.source`: which mode a lab runs, and its data.
- :mod:`stackcheck.flannel.plumbing`: what each backend programs on a host for a peer.
- :mod:`stackcheck.flannel.picture`: its part of the lab picture (leases, overlay devices).
"""
