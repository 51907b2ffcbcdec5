"""Which flannel a lab runs, and its data: etcd (v3 keyspace), etcd's v2 store (flannel <
0.18), or Kubernetes mode (Node podCIDRs and annotations, ConfigMap, DaemonSet)."""

from __future__ import annotations

from dataclasses import dataclass, field

from etcd3gw.client import Etcd3Client
from kubernetes.client.exceptions import ApiException

from stackcheck.flannel import kube as km
from stackcheck.flannel.etcd_store import _key, config_key, subnets_prefix
from stackcheck.flannel.model import Lease, NetworkConfig, parse_config, parse_lease
from stackcheck.kubernetes import Kube

ETCD = "etcd"
ETCD_V2 = "etcd v2"
KUBE = "kubernetes"
NONE = "none"


@dataclass
class FlannelData:
    """What a check needs: the mode, where the data came from, the config and the leases."""

    mode: str
    where: str
    config: NetworkConfig | None = None
    leases: list[Lease] = field(default_factory=list)
    problem: str | None = None  # why there is no config (said by every check that needs it)
    invalid: list[str] = field(default_factory=list)  # leases that do not parse, and why

    @property
    def summary(self) -> str:
        return f"{self.mode}: {self.where}"


def from_etcd(client: Etcd3Client, prefix: str) -> FlannelData | None:
    """flannel's data under ``prefix`` in etcd's v3 keyspace; None without a config key."""
    config, subnets = config_key(prefix), subnets_prefix(prefix)
    values = client.get(config)
    if not values:
        return None
    where = f"config {config} and leases {subnets}* in etcd (v3 keyspace)"
    data = FlannelData(ETCD, where)
    try:
        data.config = parse_config(values[0].decode())
    except ValueError as exc:
        data.problem = f"{config}: {exc}"
    for value, meta in client.get_prefix(subnets):
        try:
            data.leases.append(parse_lease(_key(meta), value.decode()))
        except ValueError as exc:
            data.invalid.append(str(exc))
    return data


def _configmap(kube: Kube) -> tuple[str, dict[str, str]] | None:
    for namespace in km.NAMESPACES:
        try:
            cm = kube.core.read_namespaced_config_map(km.CONFIGMAP, namespace)
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        return f"ConfigMap {namespace}/{km.CONFIGMAP}", dict(cm.data or {})
    return None


def from_kube(kube: Kube) -> FlannelData | None:
    """flannel's data in the Kubernetes API; None when there is no trace of flannel."""
    found = _configmap(kube)
    nodes = kube.core.list_node().items
    annotated = [n for n in nodes if km.has_lease(n.metadata.annotations)]
    if found is None and not annotated:
        return None
    where = (f"{found[0] if found else f'no ConfigMap {km.CONFIGMAP}'} {km.NET_CONF}; "
             f"subnets from Node podCIDRs, lease data from {km.PREFIX}* annotations "
             f"({len(annotated)} of {len(nodes)} Nodes)")
    data = FlannelData(KUBE, where)
    if found is None:
        data.problem = (f"no ConfigMap {km.CONFIGMAP} in {' or '.join(km.NAMESPACES)}, "
                        f"although {len(annotated)} Node(s) carry flannel annotations")
    else:
        try:
            data.config = km.configmap_config(found[1], found[0])
        except ValueError as exc:
            data.problem = str(exc)
    for node in annotated:
        cidrs = list(node.spec.pod_cidrs or ([node.spec.pod_cidr] if node.spec.pod_cidr else []))
        try:
            data.leases.append(km.lease_from_node(node.metadata.name,
                                                  node.metadata.annotations, cidrs))
        except ValueError as exc:
            data.invalid.append(str(exc))
    return data


def daemonset(kube: Kube, name: str) -> km.DaemonSetState | None:
    """The flannel DaemonSet (in kube-flannel or kube-system) and which nodes run a ready
    pod of it; None when there is no such DaemonSet."""
    for namespace in km.NAMESPACES:
        try:
            ds = kube.apps.read_namespaced_daemon_set(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        labels = (ds.spec.selector.match_labels or {}) if ds.spec.selector else {}
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        pods = kube.core.list_namespaced_pod(namespace, label_selector=selector).items
        state = km.DaemonSetState(f"DaemonSet {namespace}/{name}",
                                  desired=ds.status.desired_number_scheduled or 0,
                                  ready=ds.status.number_ready or 0)
        for pod in pods:
            node = pod.spec.node_name or "(unscheduled)"
            conditions = {c.type: c for c in pod.status.conditions or []}
            ready = conditions.get("Ready")
            if ready is not None and ready.status == "True":
                state.ready_on.append(node)
            else:
                why = (ready.message or ready.reason) if ready is not None else None
                state.not_ready[node] = f"{pod.metadata.name} {pod.status.phase}" + (
                    f" ({why})" if why else "")
        return state
    return None
