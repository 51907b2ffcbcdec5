"""The kit for labs on this machine, shared by the ``local`` and ``machines`` provisioners.

Hosts as network namespaces and links, cgroups, PKI, processes, progress, the state file and
teardown, the shared layout, the service builders both labs use (etcd, the flannel overlay
writer, docker, containerd, Kubernetes PKI/services/images/kubelet config) and the ``create()``
skeleton with its failure policy. Provisioners import this kit and the library, never each other.
"""
