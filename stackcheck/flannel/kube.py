"""flannel in Kubernetes mode (``flanneld --kube-subnet-mgr``): what it keeps in the API.

- A host's subnet is its Node's ``spec.podCIDR`` (``spec.podCIDRs`` when dual-stack).
- The lease data are Node annotations under ``flannel.alpha.coreos.com/`` (flannel's
  ``pkg/subnet/kube/annotations.go``): ``backend-type``, ``backend-data`` (JSON),
  ``public-ip``, ``kube-subnet-manager: "true"`` and their IPv6 twins.
- The network config is ``net-conf.json`` in the ConfigMap ``kube-flannel-cfg`` (namespace
  ``kube-flannel`` in today's manifest, ``kube-system`` before 0.20); flanneld runs as the
  DaemonSet ``kube-flannel-ds``.

Nothing is kept in etcd. Reading and writing go through the same names here, so the lab's
plumbing (writing) and the checks (reading) cannot disagree on the format.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

from stackcheck.flannel.model import Lease, NetworkConfig, compact, lease_from_attrs, parse_config

PREFIX = "flannel.alpha.coreos.com/"
BACKEND_TYPE = PREFIX + "backend-type"
BACKEND_DATA = PREFIX + "backend-data"
BACKEND_V6_DATA = PREFIX + "backend-v6-data"
PUBLIC_IP = PREFIX + "public-ip"
PUBLIC_IPV6 = PREFIX + "public-ipv6"
KUBE_SUBNET_MANAGER = PREFIX + "kube-subnet-manager"
CONFIGMAP = "kube-flannel-cfg"
NET_CONF = "net-conf.json"
NAMESPACES = ("kube-flannel", "kube-system")
DAEMONSET = "kube-flannel-ds"


def has_lease(annotations: dict[str, str] | None) -> bool:
    """True when flannel wrote its lease annotations on the Node."""
    return bool(annotations) and any(k.startswith(PREFIX) for k in annotations or {})


def lease_from_node(name: str, annotations: dict[str, str] | None,
                    pod_cidrs: list[str]) -> Lease:
    """The lease of one Node (flannel's ``nodeToLease``); ValueError names what is wrong."""
    notes = annotations or {}
    where = f"Node {name}"
    v4: ipaddress.IPv4Network | None = None
    v6: ipaddress.IPv6Network | None = None
    for cidr in pod_cidrs:
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError as exc:
            raise ValueError(f"{where}: podCIDR {cidr!r}: {exc}") from None
        if isinstance(net, ipaddress.IPv4Network):
            v4 = net
        else:
            v6 = net
    data_text = notes.get(BACKEND_DATA, "")
    try:
        data = json.loads(data_text) if data_text not in ("", "null") else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: annotation {BACKEND_DATA} is not JSON ({exc.msg}): "
                         f"{data_text!r}") from None
    value = {"PublicIP": notes.get(PUBLIC_IP, ""), "PublicIPv6": notes.get(PUBLIC_IPV6),
             "BackendType": notes.get(BACKEND_TYPE, ""), "BackendData": data}
    return lease_from_attrs(where, v4, v6, value, node=name)


def node_annotations(lease: Lease) -> dict[str, str]:
    """The annotations flanneld's ``AcquireLease`` writes for a lease."""
    out = {
        BACKEND_TYPE: lease.backend,
        BACKEND_DATA: compact(lease.backend_data) if lease.backend_data else "null",
        PUBLIC_IP: lease.public_ip,
        KUBE_SUBNET_MANAGER: "true",
    }
    if lease.public_ipv6:
        out[PUBLIC_IPV6] = lease.public_ipv6
    return out


def net_conf(config: dict) -> str:
    """``net-conf.json`` as the manifest writes it (indented JSON)."""
    return json.dumps(config, indent=2) + "\n"


def configmap_config(data: dict[str, str] | None, where: str) -> NetworkConfig:
    """The NetworkConfig in a ConfigMap's ``net-conf.json``."""
    text = (data or {}).get(NET_CONF)
    if not text:
        raise ValueError(f"{where} has no {NET_CONF}")
    try:
        return parse_config(text)
    except ValueError as exc:
        raise ValueError(f"{where} {NET_CONF}: {exc}") from None


@dataclass
class DaemonSetState:
    """The flannel DaemonSet and its pods, per node."""

    where: str
    desired: int
    ready: int
    ready_on: list[str] = field(default_factory=list)
    not_ready: dict[str, str] = field(default_factory=dict)  # node -> why
