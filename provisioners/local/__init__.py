"""The ``local`` provisioner: a real small lab on this machine, reachable like a remote one.

Hosts ``h1..hN`` are network namespaces ``sc-<name>-hN`` on a bridge in ``sc-<name>-u``;
the root namespace reaches them through one veth ``sc-<name>`` (gateway = subnet's .1,
hosts = .11, .12, ...). Each host has its own UTS and mount namespace (held by a
"holder" process): own hostname, ``/run`` (= ``<hostdir>/run``) and ``/sys``. It runs a
real sshd, etcd (first 3 hosts; 1 member for 1-2 hosts, TLS), dockerd (under tini, busybox
image imported offline) and flannel's vxlan overlay (flanneld if on PATH, else the same
data model and kernel plumbing), and Kubernetes v1.20.2 (control plane on h1; kubelet via
dockershim and kube-proxy on every host), and has an ostree sysroot.

Public API: :class:`LocalProvisioner` (``create``/``destroy``/``status``/``service``/
``reboot``), :func:`destroy_state_dir` (teardown from the state dir alone, e.g. after a
crash), :func:`healthy`. CLI for use inside a host:
``python -m stackcheck_provisioners.local --state-dir DIR --host hN ACTION [SERVICE]``.

Options (``ProvisionConfig.options``): ``name`` (default ``lab``; 1-20 of a-z0-9-),
``subnet`` (default ``10.213.0.0/24``; private), ``docker`` (default true),
``keep_on_failure`` (default false: a failed bring-up is torn down), ``kubernetes`` (default
true), ``k8s_bin_dir`` (your own binaries; default: PATH, else built once into
~/.cache/stackcheck/kubernetes), ``flannel`` (``etcd``, the default: config and leases in
etcd; ``kube``: flannel's Kubernetes mode, subnets from Node podCIDRs, lease data in Node
annotations and the ConfigMap ``kube-flannel/kube-flannel-cfg``, nothing in etcd),
``runtime`` (``docker``, the default, or ``containerd``:
Debian's containerd with its CRI plugin and Debian's CNI plugins instead of dockerd, the
kubelets on the remote runtime; see :mod:`stackcheck_provisioners.hostlab.containerd`).

In ``state_dir``: ``state.json`` (everything created, with run ids), ``inventory.yaml``,
``pki/`` (``ca.crt``, ``client.crt|key``, ``hN-etcd.crt|key``), ``ssh/`` (``id_ed25519``,
``known_hosts``, ``authorized_keys``), ``images/``, ``hosts/hN/`` (``sshd_config``, host
key, ``etcd/``, ``docker/``, ``sysroot/``, ``booted-deployment``, ``run/``, ``logs/``,
``boot_id`` (bound over the host's /proc/sys/kernel/random/boot_id), ``ostree-booted-view``
(runs a command in the booted deployment, so ostree itself marks it booted),
``etcd-overrides.json`` (test-only: ``{"--flag": "value"}`` sets flags of that host's etcd));
``ostree-upstream/`` (the lab's update repository: commits v1, v2, v3); ``kubernetes/``
(certificates, ``admin.kubeconfig``), ``hosts/hN/k8s/`` (kubelet certificates and dirs,
sysctl files, runc wrapper).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackcheck_provisioners.hostlab.layout import DEFAULT_NAME, DEFAULT_SUBNET
    from stackcheck_provisioners.local.provisioner import (
        LocalProvisioner,
        destroy_state_dir,
        healthy,
    )

#: imported when first used, so the control CLI (``-m``, a reboot) starts without them
_LAZY = {"DEFAULT_NAME": "stackcheck_provisioners.hostlab.layout",
         "DEFAULT_SUBNET": "stackcheck_provisioners.hostlab.layout",
         "destroy_state_dir": "stackcheck_provisioners.local.provisioner",
         "LocalProvisioner": "stackcheck_provisioners.local.provisioner",
         "healthy": "stackcheck_provisioners.local.provisioner"}

__all__ = ["DEFAULT_NAME", "DEFAULT_SUBNET", "LocalProvisioner", "destroy_state_dir", "healthy"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
