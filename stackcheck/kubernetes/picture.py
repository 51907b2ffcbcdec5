"""Kubernetes' part of the lab picture (:mod:`stackcheck.picture`): each node's Ready
condition on its host's card, and the nodes in one line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stackcheck.lab import Lab
from stackcheck.picture.model import BAD, OK, UNKNOWN, HostView, LayerView, Line, Probing

#: the roles whose hosts are (or may be) nodes
ROLES = ("node", "master")


@dataclass
class Node:
    name: str
    ready: str  # the Ready condition's status: "True", "False", "Unknown"
    detail: str = ""  # its reason


class KubernetesPicture:
    """The lab picture's Kubernetes part (:class:`stackcheck.picture.model.LayerPicture`)."""

    def probe(self, lab: Lab, probing: Probing) -> list[Node] | None:
        from kubernetes import client, config

        if lab.kubernetes is None:
            return None
        api = client.CoreV1Api(config.new_client_from_config(str(lab.kubernetes.kubeconfig)))
        nodes = []
        for node in api.list_node(_request_timeout=5).items:
            ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
            nodes.append(Node(node.metadata.name, ready.status if ready else "Unknown",
                              (ready.reason or "") if ready else "no Ready condition"))
        return nodes

    def view(self, hosts: Sequence[HostView], found: list[Node] | None) -> LayerView:
        part = LayerView()
        if found is None and not any(set(ROLES) & set(h.roles) for h in hosts):
            return part
        by_name = {n.name: n for n in found or []}
        for host in hosts:
            node = by_name.get(host.name)
            part.hosts[host.name] = [_host_line(host, node)]
        if found is None:
            return part
        ready = [n for n in found if n.ready == "True"]
        ok = len(ready) == len(found)
        part.cluster.append(Line(f"kubernetes: {len(found)} nodes, {len(ready)} Ready",
                                 OK if ok else BAD, strong=not ok))
        names = {h.name for h in hosts}
        for node in found:
            if node.ready != "True":
                where = node.name if node.name in names else f"node {node.name}"
                part.problems.append(f"{where}: Kubernetes node Ready={node.ready}")
        return part


def _host_line(host: HostView, node: Node | None) -> Line:
    if node is None:
        is_node = set(ROLES) & set(host.roles)
        return Line("kubernetes: not read" if is_node else "kubernetes: not a node", UNKNOWN)
    if node.ready == "True":
        return Line("kubernetes: node Ready", OK)
    return Line(f"kubernetes: NotReady {node.detail}".strip(), BAD, strong=True,
                tip=f"node {node.name}: Ready={node.ready} {node.detail}".strip())


PICTURE = KubernetesPicture()
