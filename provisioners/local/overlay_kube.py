"""flannel's Kubernetes mode in the local lab (option ``flannel=kube``): what
``flanneld --kube-subnet-mgr`` does, done by the lab's plumbing, nothing in etcd.

1. Each host's Node is registered (as its kubelet would on first start; the kubelet adopts
   it) so that kube-controller-manager (``--allocate-node-cidrs``) gives it a podCIDR
   before Docker starts: dockershim's docker0 takes its ``--bip`` from that subnet.
2. Each host's subnet is its Node's podCIDR: ``flannel.1``, ``subnet.env``, neighbours, FDB
   entries and routes to every peer (:mod:`stackcheck_provisioners.hostlab.overlay`).
3. The lease data go on the Node as flannel's annotations and the network config into the
   ConfigMap ``kube-flannel/kube-flannel-cfg`` (names and format:
   :mod:`stackcheck.flannel.kube`).
"""

from __future__ import annotations

import time

import requests

from stackcheck.flannel import kube as km
from stackcheck.flannel.model import Lease, compact, vxlan_backend_data
from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import overlay, state
from stackcheck_provisioners.hostlab.k8s_services import api_url, session
from stackcheck_provisioners.hostlab.layout import HostPlan, Layout

PODCIDR_TIMEOUT = 90  # includes kube-controller-manager starting (slow on a loaded machine)
NAMESPACE = km.NAMESPACES[0]
MODE_NOTE = (f"stackcheck plumbing in Kubernetes mode: subnets from Node podCIDRs "
             f"(kube-controller-manager --allocate-node-cidrs), lease data in {km.PREFIX}* "
             f"Node annotations, config in ConfigMap {NAMESPACE}/{km.CONFIGMAP}; nothing in "
             "etcd; no DaemonSet (no flanneld)")


def _call(layout: Layout, control: HostPlan, method: str, path: str, body: dict | None = None,
          content_type: str = "application/json", ok: tuple[int, ...] = ()) -> dict:
    with session(layout) as s:
        reply = s.request(method, api_url(control, path), json=body, timeout=10,
                          headers={"Content-Type": content_type})
    if reply.status_code >= 400 and reply.status_code not in ok:
        raise ProvisionerError(f"{method} {path}: HTTP {reply.status_code}: "
                               f"{reply.text.strip()[:200]}")
    return reply.json() if reply.content else {}


def register_nodes(layout: Layout, control: HostPlan) -> None:
    # kubelet v1.20 adopting a Node without status.capacity/allocatable panics (a nil map in
    # reconcileHugePageResource): give both a placeholder its first status update replaces
    placeholder = {"pods": "0"}
    for host in layout.hosts:
        _call(layout, control, "POST", "/api/v1/nodes",
              {"apiVersion": "v1", "kind": "Node", "metadata": {"name": host.name},
               "status": {"capacity": placeholder, "allocatable": placeholder}}, ok=(409,))


def wait_pod_cidrs(layout: Layout, control: HostPlan,
                   timeout: float = PODCIDR_TIMEOUT) -> dict[str, str]:
    """Each host's podCIDR, once the controller-manager has given every Node one."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while True:
        try:
            nodes = _call(layout, control, "GET", "/api/v1/nodes").get("items", [])
            seen = {n["metadata"]["name"]: n.get("spec", {}).get("podCIDR", "") for n in nodes}
        except (ProvisionerError, requests.RequestException) as exc:
            seen = {"(API)": str(exc)}
        if all(seen.get(h.name) for h in layout.hosts):
            return {h.name: seen[h.name] for h in layout.hosts}
        if time.monotonic() > deadline:
            raise ProvisionerError(
                f"no podCIDR on every Node in {timeout:g}s (kube-controller-manager "
                f"--allocate-node-cidrs): {seen or 'no Nodes'}")
        time.sleep(0.2)


def publish(layout: Layout, control: HostPlan, leases: list[Lease]) -> None:
    """The Node annotations and the ConfigMap, as flanneld writes them."""
    for lease in leases:
        _call(layout, control, "PATCH", f"/api/v1/nodes/{lease.node}",
              {"metadata": {"annotations": km.node_annotations(lease)}},
              content_type="application/merge-patch+json")
    _call(layout, control, "POST", "/api/v1/namespaces",
          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}, ok=(409,))
    _call(layout, control, "POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps",
          {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": km.CONFIGMAP, "namespace": NAMESPACE,
                        "labels": {"tier": "node", "app": "flannel"}},
           "data": {km.NET_CONF: km.net_conf(overlay.NETWORK_CONFIG)}}, ok=(409,))


def bring_up(layout: Layout, control: HostPlan) -> dict[str, str]:
    """Register the Nodes, wait for their podCIDRs, build the plumbing on them, publish the
    lease data; record each host's Docker bridge address. Returns host name -> subnet."""
    register_nodes(layout, control)
    subnets = wait_pod_cidrs(layout, control)
    macs = {h.name: overlay.create_vtep(h, subnets[h.name]) for h in layout.hosts}
    for host in layout.hosts:
        overlay.program_routes(host, [(p, macs[p.name]) for p in layout.hosts], subnets)
    leases = [km.lease_from_node(h.name, {
        km.BACKEND_TYPE: "vxlan", km.PUBLIC_IP: h.address,
        km.BACKEND_DATA: compact(vxlan_backend_data(macs[h.name], overlay.VNI)),
    }, [subnets[h.name]]) for h in layout.hosts]
    publish(layout, control, leases)
    with state.edit(layout.state_dir) as st:
        for host in layout.hosts:
            env = overlay.subnet_env(host, subnets[host.name])
            bip = next(line.split("=", 1)[1] for line in env.splitlines()
                       if line.startswith("FLANNEL_SUBNET="))
            st["hosts"][host.name]["bip"] = bip
            st["hosts"][host.name]["flannel_subnet"] = subnets[host.name]
    return subnets
