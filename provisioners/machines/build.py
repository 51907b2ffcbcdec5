"""Bring-up of a machines lab, step by step, recording everything in the state file first."""

from __future__ import annotations

import platform
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from stackcheck.lab import (
    FlannelConfig,
    Host,
    KubernetesAccess,
    Lab,
    ServiceControl,
)
from stackcheck.ssh import host_connection
from stackcheck.waits import wait_for
from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import (
    access,
    etcd,
    k8s_images,
    k8s_pki,
    k8s_services,
    network,
    overlay,
    pki,
    state,
)
from stackcheck_provisioners.hostlab import docker as local_docker
from stackcheck_provisioners.hostlab.bringup import PhasedBringUp
from stackcheck_provisioners.hostlab.cgroups import CGROUP_ROOT, lab_group
from stackcheck_provisioners.hostlab.layout import FLANNEL_NETWORK, HostPlan, Layout
from stackcheck_provisioners.hostlab.proc import REPO_ROOT, run, spawn
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.machines import config, k8s_up, probe, sysroot
from stackcheck_provisioners.machines import kubernetes as kube
from stackcheck_provisioners.machines.tree import OS_NAME, Tree

BOOT_TIMEOUT = 120.0
ETCD_TIMEOUT = 90.0
DOCKER_TIMEOUT = 90.0
PLUMBING = "flanneld.service: static vxlan plumbing unit (no flanneld binary given)"


def machine_cgroups(layout: Layout, host: HostPlan) -> list[Path]:
    """``stackcheck-<lab>/<host>`` in every mounted hierarchy (created; cpuset filled in).

    The machine's cgroup namespace is rooted there: its systemd and its Docker containers
    live in that subtree, never elsewhere on the machine, and teardown removes it.
    """
    out = []
    for hier in sorted(CGROUP_ROOT.iterdir()):
        if not (hier / "cgroup.procs").exists():
            continue
        path = hier / lab_group(layout.name) / host.name
        path.mkdir(parents=True, exist_ok=True)
        if (hier / "cpuset.cpus").exists():
            for d in (path.parent, path):
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not (d / name).read_text().strip():
                        (d / name).write_text((d.parent / name).read_text())
        out.append(path)
    return out


def make_lab(layout: Layout, env: dict[str, str], k8s: bool = False) -> Lab:
    """The lab's inventory model (``k8s``: Kubernetes runs in the machines)."""
    hosts = []
    base = {k: v for k, v in ServiceControl().units.items() if k != "kubelet"}
    for h in layout.hosts:
        roles = (["etcd"] if h.etcd else []) + ["atomic", "docker", "flannel"]
        control = None
        if k8s:
            names = kube.services(layout, h)
            roles += (["master"] if "kube-apiserver" in names else []) + ["node"]
            units = {**base, **kube.NODE_UNITS, **{n: n for n in names}}
            control = ServiceControl(units=units)
        hosts.append(Host(name=h.name, address=h.address, roles=roles, service_control=control))
    return Lab(
        **access.lab_fields(layout, "machines"),
        hosts=hosts,
        kubernetes=(KubernetesAccess(kubeconfig=k8s_pki.admin_kubeconfig(layout)) if k8s
                    else None),
        flannel=FlannelConfig(etcd_prefix=overlay.PREFIX),
        # systemctl and the default unit names (each machine's own list adds Kubernetes')
        service_control=ServiceControl(units=base),
        environment=env,
    )


def start_machine(layout: Layout, host: HostPlan, tree: Tree, kubelet: bool = False) -> None:
    """Start the host's supervisor (it boots the machine) and record it."""
    sd = layout.state_dir
    groups = machine_cgroups(layout, host)
    for g in groups:
        state.add_resource(sd, "cgroup", str(g), host=host.name)
    marker = host.dir / "ostree-booted"
    argv = [
        sys.executable, "-m", "stackcheck_provisioners.machines.supervisor",
        "--sysroot", str(sysroot.sysroot(host)), "--netns", host.netns,
        "--name", f"{layout.name}-{host.name}", "--upstream", str(tree.repo),
        "--marker", str(marker), "--root", str(host.dir / "root"),
        "--uuid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{layout.name}/{layout.run_id}/{host.name}")),
        *(["--kubelet"] if kubelet else []),
    ]
    enter = " && ".join(f'echo $$ > "{g}/cgroup.procs"' for g in groups) or "true"
    cmd = ["/bin/sh", "-c", f'{enter} && exec "$@"', "supervisor", *argv]
    pid, start = spawn(cmd, log=host.dir / "console.log",
                       env={**layout.env, "PYTHONPATH": str(REPO_ROOT)})
    state.set_process(sd, f"{host.name}/supervisor", {"pid": pid, "start": start,
                                                      "host": host.name})


def build(layout: Layout, tree: Tree, progress: Progress, flanneld: Path | None = None) -> Lab:
    """Build the whole lab, phase by phase; the caller tears it down if this raises.

    ``flanneld``: the user's flanneld binary for ``flanneld.service`` (else the static unit).
    """
    return BringUp(layout, tree, progress, flanneld).run(workers=max(4, len(layout.hosts)))


class BringUp(PhasedBringUp):
    """One machines lab's bring-up: each phase is a method, shown as progress steps."""

    def __init__(self, layout: Layout, tree: Tree, progress: Progress,
                 flanneld: Path | None) -> None:
        super().__init__(layout, progress)
        self.tree = tree
        self.flanneld = flanneld
        self.env = {
            "hosts": str(len(self.hosts)), "subnet": str(layout.subnet),
            "gateway": layout.gateway, "kernel": platform.release(),
            "machines": "systemd-nspawn --boot (systemd as PID 1), one ostree sysroot each",
            "machine_tree": f"{tree.repo.parent.name} "
                            f"({', '.join(c[:10] for c in tree.commits)})",
            "flannel": (f"flanneld.service: the user's flanneld ({flanneld})" if flanneld
                        else PLUMBING),
            "flannel_network": FLANNEL_NETWORK,
            "ostree": "available", "ostree_os": OS_NAME, "ostree_branch": tree.branch,
            "ostree_refspec": sysroot.refspec(tree),
            "docker_image": local_docker.IMAGE,
            "machines_state_dir": str(self.sd),
        }
        self.bins_future: Future[Path] | None = None
        self.busybox_tar: Future[Path] | None = None
        self.deployments: dict[str, list[Path]] = {}
        self.bins: Path | None = None
        self.k8s_off = ""  # why Kubernetes does not run (bins is None)
        self.lab: Lab | None = None

    def phases(self) -> list[Callable[[], None]]:
        """The phases in order (each one short; its progress line says what it did)."""
        return [self.background_work, self.keys_and_certificates, self.host_network,
                self.ostree_sysroots, self.kubernetes_binaries, self.configuration_files,
                self.boot_machines, self.sshd_answering, self.etcd_cluster, self.pod_overlay,
                self.docker_and_image, self.kubernetes]

    def record_plan(self) -> None:
        """The machines, the tree and the lab's folders, before anything runs."""
        with state.edit(self.sd) as st:
            st["hosts"] = {h.name: {"dir": str(h.dir), "netns": h.netns, "address": h.address,
                                    "etcd": h.etcd} for h in self.hosts}
            st["tree"] = {"repo": str(self.tree.repo), "commits": self.tree.commits}
        layout = self.layout
        for d in (self.sd / "hosts", layout.pki_dir, layout.ssh_dir, layout.images_dir):
            state.add_resource(self.sd, "dir", str(d))

    def background_work(self) -> None:
        """Kubernetes binaries and the busybox image, while the lab comes up."""
        pool = self._pool()
        if self.layout.kubernetes:
            self.bins_future = pool.submit(k8s_up.binaries, self.layout, self.progress)
        self.busybox_tar = pool.submit(local_docker.build_busybox_tar, self.layout)

    def keys_and_certificates(self) -> None:
        layout = self.layout
        with self.progress.step("preflight, keys and certificates"):
            network.preflight(layout)
            pki.make_tls(layout)
            pki.make_ssh(layout)
            if layout.kubernetes:
                state.add_resource(self.sd, "dir", str(k8s_pki.k8s_dir(layout)))
                kube.make_certificates(layout)

    def host_network(self) -> None:
        layout = self.layout
        with self.progress.step(f"network ({len(self.hosts)} host namespaces on "
                                f"{layout.subnet})"):
            network.create(layout)
            if layout.kubernetes:
                for h in self.hosts:  # kube-proxy's: the machine's /proc/sys/net is read-only
                    run(["ip", "netns", "exec", h.netns, "sysctl", "-q", "-w",
                         "net.ipv4.conf.all.route_localnet=1"])

    def ostree_sysroots(self) -> None:
        with self.progress.step(f"ostree sysroots: deploy versions 1 and 2 "
                                f"({len(self.hosts)} hosts)"):
            found = self._pool().map(lambda h: sysroot.deploy(h, self.tree), self.hosts)
            self.deployments = dict(zip([h.name for h in self.hosts], found, strict=True))

    def kubernetes_binaries(self) -> None:
        """The binaries, or why Kubernetes is off; then the lab's model (its units need them)."""
        if self.bins_future is not None:
            with self.progress.step("Kubernetes binaries (the cached offline build)"):
                self.bins, self.k8s_off = k8s_up.binaries_or_why(self.bins_future,
                                                                 self.progress)
        else:
            self.k8s_off = "disabled (option kubernetes=false)"
        self.lab = make_lab(self.layout, self.env, k8s=self.bins is not None)

    def configuration_files(self) -> None:
        layout, bins = self.layout, self.bins
        with self.progress.step("configuration files (/etc of each deployment, /var)"):
            assert self.busybox_tar is not None
            tar = self.busybox_tar.result()
            pause = k8s_images.build_pause_tar(layout, bins / "pause") if bins else None
            for h in self.hosts:
                for dep in self.deployments[h.name]:
                    config.write_etc(layout, h, dep, flanneld=self.flanneld is not None,
                                     pods=bins is not None)
                    if bins is not None:
                        kube.write_etc(layout, h, dep)
                config.write_var(layout, h)
                if self.flanneld is not None:
                    config.install_flanneld(self.flanneld, h)
                config.copy_image(tar, h)
                if bins is not None and pause is not None:
                    kube.install(bins, layout, h)
                    config.copy_image(pause, h)

    def boot_machines(self) -> None:
        with self.progress.step(f"boot {len(self.hosts)} machines (systemd-nspawn, supervised)"):
            for h in self.hosts:
                start_machine(self.layout, h, self.tree, kubelet=self.bins is not None)

    def sshd_answering(self) -> None:
        lab = self._lab()
        with self.progress.step("sshd answering on every machine"):
            for h in lab.hosts:
                log = self.layout.host(h.name).dir / "console.log"
                wait_for(lambda h=h: probe.ssh_ok(lab, h), timeout=BOOT_TIMEOUT, interval=0.5,
                         what=f"{h.name}: ssh.service to accept the lab's key",
                         describe=lambda log=log: f"see {log}")

    def etcd_cluster(self) -> None:
        layout, lab = self.layout, self._lab()
        with self.progress.step(f"etcd.service healthy ({len(layout.etcd_hosts)} members, "
                                "TLS)"):
            wait_for(lambda: etcd.healthy(layout), timeout=ETCD_TIMEOUT, interval=0.5,
                     what="the etcd cluster to be healthy",
                     describe=lambda: "; ".join(
                         f"{h.name}: etcd {probe.unit_active(lab, h, 'etcd')}"
                         for h in lab.hosts if h.has_role("etcd")))
        self.env["etcd_version"] = etcd.version()

    def pod_overlay(self) -> None:
        if self.flanneld is not None:
            with self.progress.step("flannel network config in etcd (flanneld takes the "
                                    "leases)"):
                overlay.write_config(self.layout)
        else:
            with self.progress.step("flannel data model in etcd (config, one lease per host)"):
                overlay.write_model(self.layout,
                                    {h.name: config.vtep_mac(h) for h in self.hosts})

    def docker_and_image(self) -> None:
        lab = self._lab()
        assert self.busybox_tar is not None
        path = f"/var/tmp/{self.busybox_tar.result().name}"
        with self.progress.step("docker.service active; busybox image imported"):
            for h in lab.hosts:
                wait_for(lambda h=h: probe.unit_active(lab, h, "docker") == "active",
                         timeout=DOCKER_TIMEOUT, interval=1,
                         what=f"{h.name}: docker.service to be active",
                         describe=lambda h=h: "docker.service "
                                              f"{probe.unit_active(lab, h, 'docker')}")
            for h in lab.hosts:
                out = host_connection(lab, h).run(
                    f"docker import --change 'CMD [\"sh\"]' {path} {local_docker.IMAGE} && "
                    f"docker tag {local_docker.IMAGE} {local_docker.ALIASES[0]} && rm -f {path}")
                if out.rc != 0:
                    raise ProvisionerError(f"{h.name}: docker import failed: {out.stderr[-300:]}")
        self.env["docker"] = "available"

    def kubernetes(self) -> None:
        """The control plane and Ready nodes (their own progress steps), or why not."""
        layout, bins = self.layout, self.bins
        if bins is None:
            self.env["kubernetes"] = self.k8s_off
            return
        control = self.hosts[0]
        with state.edit(self.sd) as st:
            st["kubernetes"] = {"bin_dir": str(bins), "control_plane": control.name,
                                "kubelets": True, "runtime": "containerd"}
        k8s_up.start_kubernetes(layout, self._lab(), self.progress)
        self.env.update({
            "kubernetes": (f"control plane on {control.name} + {len(self.hosts)} kubelets: "
                           "systemd units in the machines, containerd (CRI)"),
            "kubernetes_version": k8s_services.version(bins),
            "kubernetes_api": k8s_services.api_url(control, ""),
            "kubernetes_etcd_prefix": k8s_services.etcd_prefix(layout),
            "container_runtime": "containerd (Debian's, CRI plugin) for the kubelets",
        })

    def lab_model(self) -> Lab:
        return self._lab()

    def _lab(self) -> Lab:
        assert self.lab is not None, "the lab's model is made with the Kubernetes binaries"
        return self.lab
