"""Kubernetes inside the machines: systemd units and files only, on Debian's containerd.

Everything is a file written before the first boot; the machines' own systemd runs it:

- the cached offline build (``stackcheck_builders.kubernetes.ensure_binaries``) installed as
  ``/usr/local/bin/kube*`` (``/var/usrlocal`` on ostree, hard links to the cache);
- certificates and kubeconfigs made as the local lab makes them
  (:mod:`stackcheck_provisioners.hostlab.k8s_pki`) in ``/etc/kubernetes`` of every deployment
  (ostree's 3-way merge carries them into upgrades); etcd data, kubelet and containerd state in
  ``/var``;
- on the control host (h1): ``kube-apiserver``, ``kube-controller-manager`` and
  ``kube-scheduler.service`` with the local lab's flags
  (:mod:`stackcheck_provisioners.hostlab.k8s_services`), paths rewritten to the machine's;
- on every machine: ``kubelet.service`` (remote runtime: Debian's ``containerd.service`` with
  its CRI plugin, cgroupfs) and ``kube-proxy.service`` (iptables);
- ``/etc/containerd/config.toml``: CRI on, cgroupfs, ``restrict_oom_score_adj`` (the machine
  lacks CAP_SYS_RESOURCE: a negative ``oom_score_adj`` such as the pause container's -998
  becomes containerd's own, 0) and runc through the local lab's wrapper, which rewrites any
  negative ``oomScoreAdj`` left in a bundle (exec processes included) to 0;
- ``/etc/kubernetes/node-setup.sh`` (kubelet's ``ExecStartPre``): binds files holding kubelet's
  sysctl values over ``/proc/sys/{vm,kernel}/…`` in the machine's mount namespace (nspawn's
  ``/proc/sys`` is read-only and the real machine's values must never change; the bind is
  checked) and writes the CNI config from ``/run/flannel/subnet.env``: Debian's ``bridge`` +
  ``host-local`` on the host's flannel lease (what flannel's CNI plugin delegates to), the upper
  half of the lease for pods, on Docker's bridge ``docker0`` (Docker keeps the lower half).

What nspawn must give a kubelet (:func:`stackcheck_provisioners.machines.supervisor.nspawn_argv`,
``kubelet=True``): ``/dev/kmsg`` bound in and ``CAP_SYSLOG`` (kubelet's OOM watcher reads the
kernel log).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from stackcheck_provisioners.hostlab import containerd, k8s_pki, k8s_services
from stackcheck_provisioners.hostlab import kubelet as local_kubelet
from stackcheck_provisioners.hostlab.layout import FLANNEL_MTU, HostPlan, Layout
from stackcheck_provisioners.machines.sysroot import stateroot_var

ETC = "/etc/kubernetes"
PKI = f"{ETC}/pki"
BIN = "/usr/local/bin"
UNIT_DIR = "/usr/local/lib/systemd/system"
CONTROL_PLANE = k8s_services.CONTROL_PLANE
NODE = ("kubelet", "kube-proxy")
PAUSE_IMAGE = local_kubelet.PAUSE_IMAGE
#: units of a machine's inventory entry (service name -> systemd unit)
NODE_UNITS = {"kubelet": "kubelet", "kube-proxy": "kube-proxy", "containerd": "containerd"}

UNIT = """\
[Unit]
Description={description}
After={after}
Wants={wants}
StartLimitIntervalSec=0

[Service]
{pre}ExecStart={exec}
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""

#: Debian's containerd.service reads it: Debian's paths, runc through the lab's wrapper
CONTAINERD_CONFIG = containerd.cri_config(
    "/var/lib/containerd", "/var/lib/containerd/opt", f"{ETC}/runc-wrapper", "/etc/cni/net.d",
    restrict_oom_score_adj=True)
#: where kubelet and kube-proxy find their binaries and credentials in a machine
NODE_FILES = local_kubelet.NodeFiles(
    bin_dir=BIN, kubelet_kubeconfig=f"{ETC}/kubelet.kubeconfig",
    proxy_kubeconfig=f"{ETC}/kube-proxy.kubeconfig", tls_cert=f"{PKI}/kubelet.crt",
    tls_key=f"{PKI}/kubelet.key", client_ca=f"{PKI}/ca.crt",
    volume_plugin_dir="/var/lib/kubelet/volume-plugins")

NODE_SETUP = f"""\
#!/bin/sh
# stackcheck: what kubelet needs in this machine, before each start (idempotent)
set -eu
# kubelet's sysctl values, bound over this machine's read-only /proc/sys (never the real ones)
for f in {ETC}/sysctl/*; do
  target=/proc/sys/$(basename "$f" | tr . /)
  findmnt -rn --mountpoint "$target" >/dev/null || mount --bind "$f" "$target"
  findmnt -rn --mountpoint "$target" >/dev/null \\
    || {{ echo "cannot bind $f on $target" >&2; exit 1; }}
done
# the pod network: the host's flannel lease (as flannel's CNI plugin would delegate it)
for i in $(seq 60); do [ -s /run/flannel/subnet.env ] && break; sleep 1; done
[ -s /run/flannel/subnet.env ] || {{ echo "no /run/flannel/subnet.env from flanneld" >&2; exit 1; }}
. /run/flannel/subnet.env
net=${{FLANNEL_SUBNET%.*}}
mkdir -p /etc/cni/net.d
cat > /etc/cni/net.d/10-flannel.conflist.tmp <<EOF
{{
  "cniVersion": "0.4.0",
  "name": "flannel-lease",
  "plugins": [
    {{
      "type": "bridge", "bridge": "docker0", "isGateway": true, "ipMasq": false,
      "hairpinMode": true, "mtu": ${{FLANNEL_MTU:-{FLANNEL_MTU}}},
      "ipam": {{
        "type": "host-local",
        "ranges": [[{{"subnet": "$net.0/24", "rangeStart": "$net.128",
                     "rangeEnd": "$net.254", "gateway": "$net.1"}}]],
        "routes": [{{"dst": "0.0.0.0/0"}}]
      }}
    }},
    {{"type": "portmap", "capabilities": {{"portMappings": true}}}}
  ]
}}
EOF
mv /etc/cni/net.d/10-flannel.conflist.tmp /etc/cni/net.d/10-flannel.conflist
"""


def machine_path(layout: Layout, bins: Path, text: str) -> str:
    """A path of the lab (state dir, CA, cache) as the machine sees it."""
    for outside, inside in ((str(k8s_pki.k8s_dir(layout)), PKI), (str(layout.pki_dir), PKI),
                            (str(bins), BIN)):
        text = text.replace(outside, inside)
    return text


def _exec(argv: list[str]) -> str:
    """ExecStart= text: one flag a line, ``%`` escaped (systemd's specifier character)."""
    return " \\\n    ".join(a.replace("%", "%%") for a in argv)


def unit(description: str, argv: list[str], after: str, wants: str = "",
         pre: str = "") -> str:
    return UNIT.format(description=description, exec=_exec(argv), after=after,
                       wants=wants or after, pre=f"ExecStartPre={pre}\n" if pre else "")


def control_plane_argv(layout: Layout, control: HostPlan, bins: Path, service: str
                       ) -> list[str]:
    """The local lab's flags of a control-plane service, with the machine's paths."""
    data = {"kubernetes": {"bin_dir": str(bins)}}
    return [machine_path(layout, bins, a)
            for a in k8s_services.argv(layout, data, control, service)]


def kubelet_argv(host: HostPlan) -> list[str]:
    """kubelet v1.20 on containerd's CRI (the local lab's flags, the machine's paths)."""
    return local_kubelet.kubelet_flags(host, NODE_FILES, local_kubelet.CRI_FLAGS)


def proxy_argv(host: HostPlan) -> list[str]:
    return local_kubelet.proxy_flags(host, NODE_FILES)


def services(layout: Layout, host: HostPlan) -> tuple[str, ...]:
    """The Kubernetes units ``host`` runs, in start order."""
    return (CONTROL_PLANE if host.name == layout.hosts[0].name else ()) + NODE


def make_certificates(layout: Layout) -> None:
    """The local lab's certificates and kubeconfigs (state dir), for every machine."""
    control = layout.hosts[0]
    k8s_pki.make_control_plane(layout, control)
    for host in layout.hosts:
        k8s_pki.make_node(layout, control, host)


def _put(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # never write through a hard link into the ostree repo
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    path.chmod(mode)


def write_etc(layout: Layout, host: HostPlan, deployment: Path) -> None:
    """Kubernetes files of ``host`` into one deployment's /etc (units enabled)."""
    etc = deployment / "etc"
    kdir, ndir = k8s_pki.k8s_dir(layout), k8s_pki.node_dir(host)
    control = layout.hosts[0]
    secret = 0o600
    _put(etc / "kubernetes/pki/ca.crt", (layout.pki_dir / "ca.crt").read_bytes())
    _put(etc / "kubernetes/pki/kubelet.crt", (ndir / "kubelet.crt").read_bytes())
    _put(etc / "kubernetes/pki/kubelet.key", (ndir / "kubelet.key").read_bytes(), secret)
    _put(etc / "kubernetes/kubelet.kubeconfig", (ndir / "kubelet.kubeconfig").read_bytes(),
         secret)
    _put(etc / "kubernetes/kube-proxy.kubeconfig", (kdir / "kube-proxy.kubeconfig").read_bytes(),
         secret)
    for key, value in local_kubelet.SYSCTLS.items():
        _put(etc / "kubernetes/sysctl" / key, value + "\n")
    _put(etc / "kubernetes/node-setup.sh", NODE_SETUP, 0o755)
    runc = local_kubelet.RUNC_WRAPPER.replace("RUNC", "/usr/sbin/runc")
    _put(etc / "kubernetes/runc-wrapper", runc, 0o755)
    _put(etc / "containerd/config.toml", CONTAINERD_CONFIG)
    names = list(services(layout, host))
    if host.name == control.name:
        for name in ("apiserver", "apiserver-kubelet-client", "apiserver-etcd-client",
                     "controller-manager", "scheduler"):
            _put(etc / f"kubernetes/pki/{name}.crt", (kdir / f"{name}.crt").read_bytes())
            _put(etc / f"kubernetes/pki/{name}.key", (kdir / f"{name}.key").read_bytes(), secret)
        _put(etc / "kubernetes/pki/ca.key", (layout.pki_dir / "ca.key").read_bytes(), secret)
        _put(etc / "kubernetes/pki/sa.key", (kdir / "sa.key").read_bytes(), secret)
        _put(etc / "kubernetes/pki/sa.pub", (kdir / "sa.pub").read_bytes())
        for name in ("controller-manager", "scheduler"):
            _put(etc / f"kubernetes/pki/{name}.kubeconfig",
                 (kdir / f"{name}.kubeconfig").read_bytes(), secret)
    wants = etc / "systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for name in names:
        link = wants / f"{name}.service"
        link.unlink(missing_ok=True)
        link.symlink_to(f"{UNIT_DIR}/{name}.service")


def unit_files(layout: Layout, host: HostPlan, bins: Path) -> dict[str, str]:
    """``<service>.service`` -> its text, for the services ``host`` runs."""
    control = layout.hosts[0]
    out = {
        "kubelet.service": unit(
            "Kubernetes node agent (kubelet, containerd CRI)", kubelet_argv(host),
            after="containerd.service flanneld.service docker.service",
            wants="containerd.service flanneld.service", pre=f"{ETC}/node-setup.sh"),
        "kube-proxy.service": unit(
            "Kubernetes service proxy (iptables)", proxy_argv(host), after="network.target"),
    }
    if host.name == control.name:
        after = {"kube-apiserver": "etcd.service network.target"}
        for service in CONTROL_PLANE:
            out[f"{service}.service"] = unit(
                f"Kubernetes {service}", control_plane_argv(layout, control, bins, service),
                after=after.get(service, "kube-apiserver.service"))
    return out


def install(bins: Path, layout: Layout, host: HostPlan) -> None:
    """Binaries and units in ``/usr/local`` (``/var/usrlocal``), as an operator installs a
    release: ``bin/<name>`` (hard links to the cache when on one file system) and
    ``lib/systemd/system/<name>.service`` (on systemd's unit path; ``systemctl mask`` works
    and lasts across reboots, as with a packaged unit)."""
    usrlocal = stateroot_var(host) / "usrlocal"
    for name, text in unit_files(layout, host, bins).items():
        _put(usrlocal / "lib/systemd/system" / name, text)
    dest = usrlocal / "bin"
    dest.mkdir(parents=True, exist_ok=True)
    for name in services(layout, host):
        target = dest / name
        target.unlink(missing_ok=True)
        try:
            os.link(bins / name, target)
        except OSError:
            shutil.copyfile(bins / name, target)
            target.chmod(0o755)


def images_command(pause_tar: str, busybox: str) -> str:
    """Shell run in a machine: pause and busybox (under the names e2e and the kubelet use),
    made in its Docker, imported into containerd's ``k8s.io`` namespace for the CRI."""
    from stackcheck_provisioners.hostlab.k8s_images import BUSYBOX_ALIASES, PAUSE_ALIASES

    names = [PAUSE_IMAGE, *PAUSE_ALIASES, busybox, *BUSYBOX_ALIASES]
    tags = " && ".join([f"docker tag {PAUSE_IMAGE} {a}" for a in PAUSE_ALIASES]
                       + [f"docker tag {busybox} {a}" for a in BUSYBOX_ALIASES])
    out = "/var/tmp/k8s-images.tar"
    return (f"docker import --change 'ENTRYPOINT [\"/pause\"]' {pause_tar} {PAUSE_IMAGE} && "
            f"{tags} && docker save -o {out} {' '.join(names)} && "
            f"ctr -n k8s.io images import {out} && rm -f {out} {pause_tar}")
