"""A real kubelet (v1.20, dockershim) and kube-proxy per host, without touching the machine.

Both run in the host's namespaces (the holder's mount namespace, shared with dockerd) and
start through :data:`NODE_SCRIPT`, which first makes sure, in that mount namespace only:

- the machine-wide sysctls kubelet wants (``vm.overcommit_memory``, ``kernel.panic``, …) are
  bind-mounted per-host files already holding kubelet's values, so it never writes the real
  ones (the bind is checked; the start fails without it);
- ``/var/log`` is the host's own (kubelet hard-codes ``/var/log/pods`` and ``/var/log/containers``);
- ``--cgroup-root=/<lab>-<host>`` exists in every cgroup hierarchy (cpuset copied from the root).

The runtime is dockerd (dockershim; pods get their IPs from the host's docker0, no network
plugin) or, with option ``runtime=containerd``, containerd over CRI (``--container-runtime=
remote``; pods get their IPs from the CNI bridge ``cni0``, see
:mod:`stackcheck_provisioners.hostlab.containerd`). Either way runc is called through a wrapper
that turns a negative ``oomScoreAdj`` into 0 (root here lacks CAP_SYS_RESOURCE; kubelet asks -998
for pause). The cgroup roots are recorded in
the state file (``cgroup_root``) so teardown kills what runs there and removes them from
every hierarchy (``unified`` too).
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stackcheck_provisioners.hostlab import cgroups, containerd, state
from stackcheck_provisioners.hostlab.k8s_paths import k8s_dir, node_dir
from stackcheck_provisioners.hostlab.layout import FLANNEL_NETWORK, HostPlan, Layout
from stackcheck_provisioners.hostlab.proc import signal_pids, wait_gone

KUBELET_HEALTHZ_PORT = 10248
PROXY_HEALTHZ_PORT = 10256
PAUSE_IMAGE = "stackcheck/pause:3.2"
RUNTIME = "stackcheck-runc"

#: what kubelet v1.20 sets (setupKernelTunables); bound per host so the machine keeps its own
SYSCTLS = {
    "vm.overcommit_memory": "1",
    "vm.panic_on_oom": "0",
    "kernel.panic": "10",
    "kernel.panic_on_oops": "1",
    "kernel.keys.root_maxkeys": "1000000",
    "kernel.keys.root_maxbytes": "25000000",
}

NODE_SCRIPT = r"""set -eu
hostdir=$1 cgroot=$2
shift 2
for f in "$hostdir"/k8s/sysctl/*; do
  target=/proc/sys/$(basename "$f" | tr . /)
  findmnt -rn --mountpoint "$target" >/dev/null || mount --bind "$f" "$target"
  findmnt -rn --mountpoint "$target" >/dev/null
done
findmnt -rn --mountpoint /var/log >/dev/null || mount --bind "$hostdir/k8s/log" /var/log
for h in /sys/fs/cgroup/*; do
  [ -e "$h/cgroup.procs" ] || continue
  mkdir -p "$h$cgroot"
  if [ -e "$h/cpuset.cpus" ]; then
    cat "$h/cpuset.cpus" > "$h$cgroot/cpuset.cpus"
    cat "$h/cpuset.mems" > "$h$cgroot/cpuset.mems"
  fi
done
exec "$@"
"""

RUNC_WRAPPER = r"""#!/bin/sh
# stackcheck: root here lacks CAP_SYS_RESOURCE, so a negative oom_score_adj makes runc fail;
# rewrite it to 0 in the bundle's config.json (create/run) and the --process file (exec).
prev=
for a in "$@"; do
  f=
  case "$prev" in --bundle|-b) f="$a/config.json" ;; --process|-p) f="$a" ;; esac
  case "$a" in
    --bundle=*) f="${a#--bundle=}/config.json" ;;
    --process=*) f="${a#--process=}" ;;
  esac
  if [ -n "$f" ] && [ -f "$f" ]; then
    sed -i -E 's/"oomScoreAdj": *-[0-9]+/"oomScoreAdj":0/g' "$f"
  fi
  prev=$a
done
exec RUNC "$@"
"""


def cgroup_root(layout: Layout, host: HostPlan) -> str:
    """The kubelet's ``--cgroup-root`` (pods live below it)."""
    return f"/{layout.name}-{host.name}"


def prepare(layout: Layout, host: HostPlan) -> None:
    """Directories, sysctl files and the runtime wrapper (dockerd's default runtime, or
    containerd's runc ``BinaryName``), before the runtime starts."""
    d = node_dir(host)
    for sub in ("kubelet", "dockershim", "log", "sysctl", "volume-plugins", "cni"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    for key, value in SYSCTLS.items():
        (d / "sysctl" / key).write_text(value + "\n")
    runc = shutil.which("runc") or "/usr/sbin/runc"
    wrapper = d / "runc-wrapper"
    wrapper.write_text(RUNC_WRAPPER.replace("RUNC", runc))
    wrapper.chmod(0o755)
    config = {"runtimes": {RUNTIME: {"path": str(wrapper)}}, "default-runtime": RUNTIME}
    (host.dir / "docker-daemon.json").write_text(json.dumps(config, indent=2) + "\n")
    if layout.runtime == "containerd":
        containerd.prepare(layout, host, wrapper)
    state.add_resource(layout.state_dir, "cgroup_root", cgroup_root(layout, host),
                       host=host.name)


def _node(layout: Layout, host: HostPlan, argv: list[str]) -> list[str]:
    return ["/bin/sh", "-c", NODE_SCRIPT, "k8s-node", str(host.dir),
            cgroup_root(layout, host), *argv]


@dataclass(frozen=True)
class NodeFiles:
    """Where a node's kubelet and kube-proxy find their binaries, credentials and state."""

    bin_dir: str
    kubelet_kubeconfig: str
    proxy_kubeconfig: str
    tls_cert: str
    tls_key: str
    client_ca: str
    volume_plugin_dir: str
    #: kubelet's state and certificate folders, and its pods' cgroup parent (None: kubelet's
    #: defaults, as on a machine of its own)
    root_dir: str | None = None
    cert_dir: str | None = None
    cgroup_root: str | None = None


#: the kubelet on containerd's CRI plugin (the socket inside the host or machine)
CRI_FLAGS = ("--container-runtime=remote",
             f"--container-runtime-endpoint=unix://{containerd.SOCKET}",
             "--runtime-request-timeout=2m")


def runtime_flags(layout: Layout, host: HostPlan) -> list[str]:
    """dockershim (no network plugin: docker0 is the pods' bridge), or containerd over CRI."""
    d = node_dir(host)
    if layout.runtime == "containerd":
        return list(CRI_FLAGS)
    return ["--container-runtime=docker",
            "--docker-endpoint=unix:///run/docker.sock",
            f"--experimental-dockershim-root-directory={d / 'dockershim'}",
            "--network-plugin=",
            f"--cni-conf-dir={d / 'cni'}",
            f"--cni-bin-dir={d / 'cni'}"]


def kubelet_flags(host: HostPlan, files: NodeFiles, runtime: Sequence[str]) -> list[str]:
    """kubelet v1.20 of ``host`` (its command line), on ``runtime`` (:func:`runtime_flags`)."""
    optional = (("--root-dir", files.root_dir), ("--cert-dir", files.cert_dir),
                ("--cgroup-root", files.cgroup_root))
    return [
        f"{files.bin_dir}/kubelet",
        f"--kubeconfig={files.kubelet_kubeconfig}",
        f"--hostname-override={host.name}",
        f"--node-ip={host.address}",
        f"--address={host.address}",
        "--port=10250",
        "--read-only-port=0",
        f"--healthz-bind-address={host.address}",
        f"--healthz-port={KUBELET_HEALTHZ_PORT}",
        f"--tls-cert-file={files.tls_cert}",
        f"--tls-private-key-file={files.tls_key}",
        f"--client-ca-file={files.client_ca}",
        "--anonymous-auth=false",
        "--authentication-token-webhook",
        "--authorization-mode=Webhook",
        *runtime,
        *(f"{flag}={value}" for flag, value in optional if value is not None),
        "--cgroup-driver=cgroupfs",
        "--fail-swap-on=false",
        f"--pod-infra-container-image={PAUSE_IMAGE}",
        "--resolv-conf=",
        f"--volume-plugin-dir={files.volume_plugin_dir}",
        "--oom-score-adj=0",
        # offline images must never be garbage-collected; the machine's disk is shared
        "--image-gc-high-threshold=100",
        "--image-gc-low-threshold=99",
        "--eviction-hard=memory.available<100Mi,nodefs.available<2%,imagefs.available<2%",
        # Ready shows at the first status sync after registration (default every 10s); the
        # status is still only posted when it changes
        "--node-status-update-frequency=4s",
    ]


def proxy_flags(host: HostPlan, files: NodeFiles) -> list[str]:
    """kube-proxy of ``host`` in iptables mode, writing no machine-wide conntrack settings."""
    return [
        f"{files.bin_dir}/kube-proxy",
        f"--kubeconfig={files.proxy_kubeconfig}",
        f"--hostname-override={host.name}",
        f"--bind-address={host.address}",
        f"--healthz-bind-address={host.address}:{PROXY_HEALTHZ_PORT}",
        "--metrics-bind-address=127.0.0.1:10249",
        "--proxy-mode=iptables",
        f"--cluster-cidr={FLANNEL_NETWORK}",
        "--conntrack-max-per-core=0",
        "--conntrack-tcp-timeout-established=0",
        "--conntrack-tcp-timeout-close-wait=0",
        "--oom-score-adj=0",
    ]


def node_files(layout: Layout, host: HostPlan, bin_dir: Path) -> NodeFiles:
    """A host's files in the lab's state folder (its own kubelet dirs and cgroup root)."""
    d = node_dir(host)
    return NodeFiles(
        bin_dir=str(bin_dir), kubelet_kubeconfig=str(d / "kubelet.kubeconfig"),
        proxy_kubeconfig=str(k8s_dir(layout) / "kube-proxy.kubeconfig"),
        tls_cert=str(d / "kubelet.crt"), tls_key=str(d / "kubelet.key"),
        client_ca=str(layout.pki_dir / "ca.crt"),
        volume_plugin_dir=str(d / "volume-plugins"), root_dir=str(d / "kubelet"),
        cert_dir=str(d / "kubelet" / "pki"), cgroup_root=cgroup_root(layout, host))


def kubelet_argv(layout: Layout, host: HostPlan, bin_dir: Path) -> list[str]:
    return _node(layout, host, kubelet_flags(host, node_files(layout, host, bin_dir),
                                             runtime_flags(layout, host)))


def proxy_argv(layout: Layout, host: HostPlan, bin_dir: Path) -> list[str]:
    return _node(layout, host, proxy_flags(host, node_files(layout, host, bin_dir)))


def http_ok(address: str, port: int, path: str = "/healthz", timeout: float = 1) -> bool:
    """True if ``http://address:port/path`` answers 200 (no proxies from the environment)."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def kubelet_ready(layout: Layout, host: HostPlan) -> bool:
    return http_ok(host.address, KUBELET_HEALTHZ_PORT)


def proxy_ready(layout: Layout, host: HostPlan) -> bool:
    return http_ok(host.address, PROXY_HEALTHZ_PORT)


# --- pod cgroups: what teardown (and a docker stop) must kill and remove ----------------


def _hierarchies() -> list[Path]:
    root = cgroups.CGROUP_ROOT
    if (root / "cgroup.controllers").exists():
        return [root]
    return [p for p in sorted(root.iterdir()) if (p / "cgroup.procs").exists()]


def _roots(data: state.State, host: str | None = None) -> list[str]:
    return [r["name"] for r in state.resources(data, "cgroup_root")
            if host is None or r.get("host") == host]


def pod_pids(data: state.State, host: str | None = None) -> set[int]:
    """Every PID in the recorded kubelet cgroup roots (all hosts, or one)."""
    found: set[int] = set()
    for hier in _hierarchies():
        for name in _roots(data, host):
            found |= cgroups.pids_in(hier / name.lstrip("/"))
    return found


def kill_pods(data: state.State, host: str | None = None, timeout: float = 5) -> bool:
    """SIGKILL what runs in the pod cgroups; True when none is left."""
    signal_pids(pod_pids(data, host), signal.SIGKILL)
    return wait_gone(lambda: bool(pod_pids(data, host)), timeout)


def remove_cgroup_roots(data: state.State, timeout: float = 5) -> list[str]:
    """Remove the recorded cgroup roots from every hierarchy, deepest first; return leftovers."""
    tops = [hier / name.lstrip("/") for hier in _hierarchies() for name in _roots(data)]
    return cgroups.remove_trees(tops, timeout)
