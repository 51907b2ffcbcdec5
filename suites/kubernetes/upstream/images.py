"""Which of the images upstream specs need are on every node (from the nodes' status.images)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from kubernetes import client

#: kubelet's events: Failed to pull image "X": ..., Back-off pulling image "X",
#: Container image "X" is not present with pull policy of Never (quotes may be escaped).
_PULL_FAILURE = re.compile(
    r'(?:Failed to pull image|Back-off pulling image|Container image) \\?"([^"\\\s]+)\\?"'
)


def normalize(ref: str) -> str:
    """Docker's short form: ``docker.io/library/busybox:1.29`` -> ``busybox:1.29``."""
    for prefix in ("docker.io/library/", "docker.io/", "library/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref


def node_images(core: client.CoreV1Api) -> dict[str, set[str]]:
    """Node name -> the image names its kubelet reports (normalized)."""
    found = {}
    for node in core.list_node().items:
        names = {normalize(n) for image in node.status.images or [] for n in image.names or []}
        found[node.metadata.name] = names
    return found


def missing(refs: Iterable[str], on_nodes: dict[str, set[str]]) -> dict[str, list[str]]:
    """Image reference -> the nodes that lack it (only references some node lacks)."""
    absent = {}
    for ref in sorted(set(refs)):
        nodes = sorted(n for n, names in on_nodes.items() if normalize(ref) not in names)
        if nodes:
            absent[ref] = nodes
    return absent


def pull_failures(log: str) -> set[str]:
    """Image references a spec's log says could not be pulled (or were not present)."""
    return {m[1] for m in _PULL_FAILURE.finditer(log)}
