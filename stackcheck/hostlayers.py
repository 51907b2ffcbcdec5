"""The layers that live on each host, probed over one SSH command per host: the container
runtime answers, the kubelet answers its health endpoint, flannel's plumbing is there
(``/run/flannel/subnet.env`` and ``flannel.1`` up). Used by the preflight; every probe is
bounded on the host with ``timeout``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from stackcheck.errors import cut_line
from stackcheck.lab import Host, Lab
from stackcheck.runtime import detect
from stackcheck.ssh import host_connection

#: s each probe may take on the host
PROBE_TIMEOUT = 5
#: the kubelet's health endpoint (its default --healthz-bind-address and --healthz-port)
KUBELET_HEALTHZ = ("127.0.0.1", 10248)
FLANNEL_DEVICE = "flannel.1"
SUBNET_ENV = "/run/flannel/subnet.env"
_SECTION = "@@stackcheck-layer "
_RC = "@@stackcheck-rc "


@dataclass(frozen=True)
class LayerProbe:
    """One host layer's probe: the shell command, and the service that provides it."""

    layer: str  # runtime, kubelet, flannel
    service: str  # the service (ServiceControl name) to ask the host about when it fails
    command: str
    what: str  # what answering means, for messages ("docker version")

    def finding(self, why: str) -> str:
        """``does not answer (docker version: Cannot connect …)``; flannel: what is missing."""
        if self.layer == "flannel":
            return why
        return f"does not answer ({self.what}: {why})"


def runtime_probe(kind: str, socket: str = "") -> LayerProbe:
    """Does the host's container runtime answer? ``kind`` is what
    :func:`stackcheck.runtime.detect` found the host to run (the kubelet's own flags first,
    then whichever daemon answers, then the inventory's roles): Docker is asked with
    ``docker version``, containerd with its own client over its socket, CRI-O with crictl."""
    if kind == "containerd":
        sock = socket or "/run/containerd/containerd.sock"
        return LayerProbe("runtime", "containerd",
                          f"ctr --address {shlex.quote(sock)} --connect-timeout 5s version",
                          "ctr version")
    if kind == "cri-o":
        sock = socket or "/run/crio/crio.sock"
        return LayerProbe("runtime", "crio",
                          f"crictl --runtime-endpoint unix://{shlex.quote(sock)} version",
                          "crictl version")
    fmt = shlex.quote("{{.Server.Version}}")
    return LayerProbe("runtime", "docker", f"docker version --format {fmt}", "docker version")


def kubelet_probe(host: Host) -> LayerProbe:
    """The kubelet answers ``ok`` on its health endpoint, on 127.0.0.1 (its default) or on
    the host's own address (plain bash, no curl needed); the last failure is the reason."""
    _, port = KUBELET_HEALTHZ
    attempts = []
    for address in dict.fromkeys((KUBELET_HEALTHZ[0], host.address)):
        request = shlex.quote(
            f"exec 3<>/dev/tcp/{address}/{port} && "
            "printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3")
        attempts.append(f"out=$(bash -c {request} 2>&1 | tail -n 1); "
                        "[ \"$out\" = ok ] && exit 0")
    command = "; ".join(attempts) + "; echo \"${out:-no answer}\"; exit 1"
    return LayerProbe("kubelet", "kubelet", command, f"healthz on port {port}")


def flannel_probe() -> LayerProbe:
    return LayerProbe(
        "flannel", "flannel",
        f"grep -q '^FLANNEL_SUBNET=' {SUBNET_ENV} || {{ echo 'no FLANNEL_SUBNET in {SUBNET_ENV}';"
        f" exit 1; }}; ip -o link show {FLANNEL_DEVICE} 2>&1 | grep -q 'state UP\\|,UP' || "
        f"{{ echo \"{FLANNEL_DEVICE} missing or down\"; exit 1; }}",
        f"{SUBNET_ENV} and {FLANNEL_DEVICE} up",
    )


def probes_for(lab: Lab, host: Host, runtime: tuple[str, str] = ("docker", "")
               ) -> list[LayerProbe]:
    """The host layers ``host``'s roles declare; ``runtime``: (kind, socket) it runs."""
    out = []
    if host.has_role("docker") or host.has_role("node"):
        out.append(runtime_probe(*runtime))
    if host.has_role("node") and lab.kubernetes is not None:
        out.append(kubelet_probe(host))
    if host.has_role("flannel"):
        out.append(flannel_probe())
    return out


def _script(probes: list[LayerProbe]) -> str:
    parts = []
    for probe in probes:
        parts.append(f"echo '{_SECTION}{probe.layer}'; "
                     f"timeout {PROBE_TIMEOUT} sh -c {shlex.quote(probe.command)} 2>&1 "
                     f"</dev/null; echo \"{_RC}$?\"")
    return "; ".join(parts)


def _reason(output: str, rc: int) -> str:
    """The last line a failed probe printed, as the reason ('timed out' for timeout's 124)."""
    if rc == 124:
        return f"no answer within {PROBE_TIMEOUT} s"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return cut_line(lines[-1], 160) if lines else f"exit status {rc}, no output"


def probe_host(lab: Lab, host: Host) -> dict[str, tuple[LayerProbe, str | None]]:
    """layer -> (its probe, None if it answers else why not, one line). Raises if the host
    cannot be reached over SSH (the SSH probe reports that)."""
    conn = host_connection(lab, host)
    runtime = ("docker", "")
    if host.has_role("docker") or host.has_role("node"):
        found = detect(conn, host.roles)
        runtime = (found.kind, found.socket)
    probes = probes_for(lab, host, runtime)
    if not probes:
        return {}
    result = conn.run(_script(probes))
    found: dict[str, tuple[LayerProbe, str | None]] = {}
    by_layer = {p.layer: p for p in probes}
    for block in result.stdout.split(_SECTION)[1:]:
        layer, _, rest = block.partition("\n")
        output, _, rc_text = rest.rpartition(_RC)
        probe = by_layer.get(layer.strip())
        if probe is None:
            continue
        rc = int(rc_text.strip() or 1) if rc_text.strip().isdigit() else 1
        found[probe.layer] = (probe, None if rc == 0 else _reason(output, rc))
    for layer, probe in by_layer.items():
        found.setdefault(layer, (probe, f"the probe printed nothing (exit {result.rc})"))
    return found
