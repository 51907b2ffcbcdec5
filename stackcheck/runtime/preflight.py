"""The container runtime's part of the preflight: does each host's runtime answer?"""

from __future__ import annotations

import shlex
from typing import Any

from stackcheck.hostlayers import LayerProbe
from stackcheck.lab import Host, Lab
from stackcheck.preflight import LayerHealth, LayerPreflight, Seen
from stackcheck.runtime.detect import detect

LINE = "runtime"


def runtime_probe(kind: str, socket: str = "") -> LayerProbe:
    """Does the host's container runtime answer? ``kind`` is what
    :func:`stackcheck.runtime.detect` found the host to run (the kubelet's own flags first,
    then whichever daemon answers, then the inventory's roles): Docker is asked with
    ``docker version``, containerd with its own client over its socket, CRI-O with crictl."""
    if kind == "containerd":
        sock = socket or "/run/containerd/containerd.sock"
        return LayerProbe(LINE, "containerd",
                          f"ctr --address {shlex.quote(sock)} --connect-timeout 5s version",
                          "ctr version")
    if kind == "cri-o":
        sock = socket or "/run/crio/crio.sock"
        return LayerProbe(LINE, "crio",
                          f"crictl --runtime-endpoint unix://{shlex.quote(sock)} version",
                          "crictl version")
    fmt = shlex.quote("{{.Server.Version}}")
    return LayerProbe(LINE, "docker", f"docker version --format {fmt}", "docker version")


def runs_containers(host: Host) -> bool:
    """The host's roles say it runs containers (a Docker host or a Kubernetes node)."""
    return host.has_role("docker") or host.has_role("node")


class RuntimePreflight(LayerPreflight):
    def host_probes(self, lab: Lab, host: Host, conn: Any) -> list[LayerProbe]:
        if not runs_containers(host):
            return []
        found = detect(conn, host.roles)
        return [runtime_probe(found.kind, found.socket)]

    def judge(self, seen: Seen) -> dict[str, LayerHealth]:
        health = seen.host_line(LINE, "answers on all {n} hosts")
        return {LINE: health} if health is not None else {}


PREFLIGHT = RuntimePreflight()
