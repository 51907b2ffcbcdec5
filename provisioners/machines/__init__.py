"""The ``machines`` provisioner: real systemd machines on this box, booted from ostree.

Each host is a ``systemd-nspawn --boot`` machine (systemd 252 as its PID 1) in its own network
namespace on the lab's underlay (the local lab's network code: ``sc-<name>-hN``, bridge in
``sc-<name>-u``, one veth ``sc-<name>`` in the root namespace), booted from its own ostree
sysroot holding deployments of a Debian 12 tree built once from Debian's packages and cached
(:mod:`stackcheck_provisioners.machines.tree`). The machines run the distribution's own units —
``ssh.service``, ``etcd.service`` (``/etc/default/etcd``: TLS, 3 members), ``docker.service``
— plus a ``flanneld.service`` (:mod:`stackcheck_provisioners.machines.config`), and Kubernetes as
units inside the machines on Debian's containerd
(:mod:`stackcheck_provisioners.machines.kubernetes`: the control plane on h1, ``kubelet`` and
``kube-proxy`` everywhere). A supervisor per machine
(:mod:`stackcheck_provisioners.machines.supervisor`), owned by the lab, boots it again from the
default deployment when ``systemctl reboot`` ends its nspawn. The suites reach the machines only
through the inventory: default ``service_control`` (systemctl) and unit names, SSH.

Options: ``name`` (default ``machines``), ``subnet`` (default ``10.212.0.0/24``),
``flanneld`` (path of your flanneld binary for ``flanneld.service``; default: the static unit
of that name, see :mod:`stackcheck_provisioners.machines.config`), ``kubernetes`` (default ``true``;
``false``: no Kubernetes),
``k8s_bin_dir`` (your Kubernetes binaries instead of the cached build), ``keep_on_failure``.

State in ``state_dir`` as for the local lab (``state.json``, ``inventory.yaml``, ``pki/``,
``ssh/``, ``hosts/hN/`` with ``sysroot/`` and ``console.log``, the supervisor's and the
machine's console output).
"""

from __future__ import annotations

from stackcheck_provisioners.machines.provisioner import (
    MachinesProvisioner,
    destroy_state_dir,
    healthy,
)

__all__ = ["MachinesProvisioner", "destroy_state_dir", "healthy"]
