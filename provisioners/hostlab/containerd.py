"""containerd per host (Debian containerd 1.6, CRI plugin built in) and its CNI network.

Used with option ``runtime=containerd`` instead of dockerd. Like dockerd it runs under
``tini -s`` inside the host's namespaces (``nsenter -t <holder> -m -u -n``) with its own
root (``<hostdir>/containerd``), state and socket under the host's private ``/run``
(``/run/containerd/containerd.sock`` inside = ``<hostdir>/run/containerd/`` outside), the
cgroupfs driver, and the lab's oom_score_adj runc wrapper as the runc runtime's
``BinaryName``. The kubelet talks to it as a remote CRI runtime.

The CNI config is what flannel's CNI plugin delegates to (``bridge`` ``cni0`` +
``host-local`` from the host's ``subnet.env``: its subnet, the flannel network as route, the
flannel MTU); Debian's plugins in ``/usr/lib/cni`` (bridge, host-local, loopback), the
config and IPAM data per host (never the machine's ``/etc/cni`` or ``/var/lib/cni``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import state
from stackcheck_provisioners.hostlab.layout import FLANNEL_MTU, FLANNEL_NETWORK, HostPlan, Layout
from stackcheck_provisioners.hostlab.proc import alive, run

#: the socket inside the host (the kubelet's ``--container-runtime-endpoint``)
SOCKET = "/run/containerd/containerd.sock"
NAMESPACE = "k8s.io"
CNI_BIN_DIR = "/usr/lib/cni"
BRIDGE = "cni0"
SANDBOX_IMAGE = "docker.io/stackcheck/pause:3.2"
CNI_NETWORK = "cbr0"  # flannel's network name


def base_dir(host: HostPlan) -> Path:
    return host.dir / "containerd"


def config_path(host: HostPlan) -> Path:
    return base_dir(host) / "config.toml"


def cni_conf_dir(host: HostPlan) -> Path:
    return base_dir(host) / "cni" / "net.d"


def cri_config(root: str | Path, opt: str | Path, runc_binary: str | Path,
               cni_conf_dir: str | Path, restrict_oom_score_adj: bool = False) -> str:
    """containerd's config (version 2) for a kubelet's CRI: state and socket under ``/run``,
    cgroupfs, runc through ``runc_binary`` (the lab's oom_score_adj wrapper), Debian's CNI
    plugins. ``restrict_oom_score_adj``: never ask for less than containerd's own (where
    containerd runs without CAP_SYS_RESOURCE, as in a machine)."""
    restrict = ("\n  # no CAP_SYS_RESOURCE here: never ask for a lower oom_score_adj than "
                "containerd's\n  restrict_oom_score_adj = true" if restrict_oom_score_adj else "")
    return f'''# stackcheck: containerd's CRI plugin for the kubelet
version = 2
root = "{root}"
state = "/run/containerd"
oom_score = 0

[grpc]
  address = "{SOCKET}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  systemd_cgroup = false{restrict}

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc_binary}"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni_conf_dir}"
    max_conf_num = 1
'''


def config_toml(host: HostPlan, runc_binary: Path) -> str:
    """The host's containerd config: its own root and CNI folder under the host's dir."""
    d = base_dir(host)
    return cri_config(d / "root", d / "opt", runc_binary, cni_conf_dir(host))


def cni_conflist(host: HostPlan, subnet: str | None = None) -> dict:
    """What flannel's CNI plugin hands to ``bridge`` for this host's lease (no portmap);
    ``subnet``: the lease when it is not the host's planned one (flannel=kube: the podCIDR)."""
    return {
        "cniVersion": "0.3.1",
        "name": CNI_NETWORK,
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": True,
            "isDefaultGateway": True,  # kube-flannel.yml's delegate: Service IPs go via cni0
            "ipMasq": False,
            "hairpinMode": True,
            "mtu": FLANNEL_MTU,
            "ipam": {
                "type": "host-local",
                "subnet": subnet or host.flannel_subnet,
                "routes": [{"dst": FLANNEL_NETWORK}],
                "dataDir": str(base_dir(host) / "cni" / "ipam"),
            },
        }],
    }


def prepare(layout: Layout, host: HostPlan, runc_binary: Path) -> None:
    """Directories, config.toml and the CNI conflist (before containerd starts)."""
    d = base_dir(host)
    for sub in ("root", "opt", "cni/net.d", "cni/ipam"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    config_path(host).write_text(config_toml(host, runc_binary))
    write_cni(host)


def write_cni(host: HostPlan, subnet: str | None = None) -> None:
    """The CNI conflist containerd loads (it watches the folder: a rewrite takes effect)."""
    conf = cni_conf_dir(host) / "10-flannel.conflist"
    conf.write_text(json.dumps(cni_conflist(host, subnet), indent=2) + "\n")


def argv(layout: Layout, host: HostPlan) -> list[str]:
    return ["tini", "-s", "--", "containerd", "--config", str(config_path(host))]


def socket_path(layout: Layout, host: HostPlan) -> Path:
    """A short path to the host's socket through its holder's root (sun_path <= 108)."""
    data = state.read(layout.state_dir) or {}
    rec = data.get("processes", {}).get(f"{host.name}/holder")
    if rec and alive(rec["pid"], rec["start"]):
        return Path(f"/proc/{rec['pid']}/root{SOCKET}")
    return host.run_dir / "containerd" / "containerd.sock"


def client() -> str:
    exe = shutil.which("ctr")
    if exe is None:
        raise ProvisionerError("ctr not found (Debian package containerd)")
    return exe


def ctr(layout: Layout, host: HostPlan, *args: str, timeout: float = 60,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ctr`` against the host's containerd (namespace k8s.io)."""
    return run([client(), "--address", str(socket_path(layout, host)), "--namespace", NAMESPACE,
                *args], timeout=timeout, check=check)


def ready(layout: Layout, host: HostPlan) -> bool:
    """True once containerd answers ``ctr version`` (its server part) over its socket."""
    sock = socket_path(layout, host)
    if not sock.exists():
        return False
    try:
        out = ctr(layout, host, "--connect-timeout", "2s", "version", timeout=4, check=False)
    except (ProvisionerError, subprocess.TimeoutExpired, OSError):
        return False
    return out.returncode == 0 and "Server:" in out.stdout


def import_archive(layout: Layout, host: HostPlan, archive: Path) -> None:
    """Import a docker-format image archive (unpacked for the CRI's overlayfs snapshotter)."""
    ctr(layout, host, "images", "import", str(archive), timeout=120)


def version() -> str:
    out = run(["containerd", "--version"], check=False).stdout.split()
    return out[2] if len(out) >= 3 else "unknown"
