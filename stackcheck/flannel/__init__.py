"""flannel: its data model in etcd, ``subnet.env`` and the host's plumbing, read and parsed.

- :mod:`stackcheck.flannel.model`: the network config and leases (from etcd), ``subnet.env``,
  ``ip -j`` output and the VXLAN MTU arithmetic.
"""
