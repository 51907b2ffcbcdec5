"""Bring-up of a local lab, step by step, recording everything in the state file first."""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from stackcheck.lab import Lab
from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import (
    containerd,
    docker,
    etcd,
    network,
    ostree,
    overlay,
    pki,
    state,
)
from stackcheck_provisioners.hostlab.bringup import PhasedBringUp
from stackcheck_provisioners.hostlab.layout import FLANNEL_NETWORK, OS_NAME, Layout
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.local import control, holder, kubernetes, overlay_kube, sshd
from stackcheck_provisioners.local.inventory import make_lab

ETCD_TIMEOUT = 30
SSH_TIMEOUT = 15
DOCKER_TIMEOUT = 60
CONTAINERD_TIMEOUT = 30


def _wait(what: str, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ProvisionerError(f"{what} not ready after {timeout:g}s")
        time.sleep(0.05)


def _sshd_version() -> str:
    out = subprocess.run(["/usr/sbin/sshd", "-V"], capture_output=True, text=True)
    text = (out.stderr or out.stdout).strip()
    return text.split(",")[0] if text else "unknown"


def build(layout: Layout, progress: Progress) -> Lab:
    """Build the whole lab, phase by phase; the caller tears it down if this raises."""
    return BringUp(layout, progress).run(workers=max(4, 2 * len(layout.hosts)))


class BringUp(PhasedBringUp):
    """One local lab's bring-up: each phase is a method, shown as one progress step."""

    def __init__(self, layout: Layout, progress: Progress) -> None:
        super().__init__(layout, progress)
        self.kube_flannel = layout.flannel == "kube"  # plumbing only: flanneld runs in etcd mode
        self.real_flannel = overlay.flanneld() is not None and not self.kube_flannel
        self.env = {
            "hosts": str(len(self.hosts)),
            "subnet": str(layout.subnet),
            "gateway": layout.gateway,
            "kernel": platform.release(),
            "flannel": overlay_kube.MODE_NOTE if self.kube_flannel else overlay.kind(),
            "flannel_mode": layout.flannel,
            "flannel_network": FLANNEL_NETWORK,
            "local_state_dir": str(self.sd),
            "container_runtime": layout.runtime,
        }
        self.data: state.State = {}  # the state file as the services were started
        self.k8s: kubernetes.BringUp | None = None
        self.versions: dict[str, Future[str]] = {}
        self.busybox_tar: Future[Path] | None = None
        self.macs: dict[str, str] = {}
        self.trees: dict[str, Future[dict[str, str]]] = {}

    def phases(self) -> list[Callable[[], None]]:
        """The phases in order (each one short; its progress line says what it did)."""
        return [self.keys_and_certificates, self.background_work, self.host_network,
                self.host_namespaces, self.start_services, self.etcd_cluster,
                self.control_plane, self.pod_overlay, self.sshd_answering, self.ostree_sysroots,
                self.container_runtime, self.kubernetes_nodes, self.collect_versions]

    def record_plan(self) -> None:
        """The hosts, the flannel kind, the runtime and the lab's folders, before anything runs."""
        layout = self.layout
        with state.edit(self.sd) as st:
            st["hosts"] = {
                h.name: {"dir": str(h.dir), "netns": h.netns, "address": h.address,
                         "etcd": h.etcd, "flannel_subnet": h.flannel_subnet}
                for h in self.hosts
            }
            st["flannel"] = "flanneld" if self.real_flannel else "plumbing"
            st["docker_available"] = layout.docker
            st["containerd_available"] = layout.runtime == "containerd"
            st["runtime"] = layout.runtime
        for d in (self.sd / "hosts", layout.pki_dir, layout.ssh_dir, layout.images_dir,
                  self.sd / "locks"):
            state.add_resource(self.sd, "dir", str(d))

    def keys_and_certificates(self) -> None:
        with self.progress.step("preflight, keys and certificates"):
            network.preflight(self.layout)
            pki.make_tls(self.layout)
            pki.make_ssh(self.layout)
            for h in self.hosts:
                sshd.prepare(self.layout, h)
                docker.prepare(self.layout, h)

    def background_work(self) -> None:
        """Kubernetes binaries, versions and the busybox image, while the lab comes up."""
        layout, pool = self.layout, self._pool()
        if layout.kubernetes:
            self.k8s = kubernetes.BringUp(layout, pool, self.progress)
        self.versions = {
            "etcd_version": pool.submit(etcd.version),
            "docker_version" if layout.docker else "containerd_version":
                pool.submit(docker.version if layout.docker else containerd.version),
            "ostree_version": pool.submit(ostree.version),
            "sshd_version": pool.submit(_sshd_version),
        }
        self.busybox_tar = pool.submit(docker.build_busybox_tar, layout)

    def host_network(self) -> None:
        with self.progress.step(f"network ({len(self.hosts)} host namespaces on "
                                f"{self.layout.subnet})"):
            network.create(self.layout)

    def host_namespaces(self) -> None:
        with self.progress.step("host namespaces (hostname, private /run)"):
            for h in self.hosts:
                holder.start(self.layout, h)
            for h in self.hosts:
                holder.wait_ready(self.layout, h)

    def start_services(self) -> None:
        layout = self.layout
        data = self.data = state.read(self.sd) or {}
        with self.progress.step(f"start sshd, etcd, "
                                f"{'dockerd' if layout.docker else layout.runtime}"
                                "; ostree sysroots"):
            for h in self.hosts:
                control.launch(layout, data, h, "sshd")
            for h in layout.etcd_hosts:
                control.launch(layout, data, h, "etcd")
            if layout.runtime == "containerd":
                for h in self.hosts:
                    control.launch(layout, data, h, "containerd")
            if not self.real_flannel and not self.kube_flannel:
                self.macs = {h.name: overlay.create_vtep(h) for h in self.hosts}
                for h in self.hosts:
                    overlay.program_routes(h, [(p, self.macs[p.name]) for p in self.hosts])
                self._launch_docker(data)
            self.trees = {h.name: self._pool().submit(ostree.create, layout, h)
                          for h in self.hosts}

    def etcd_cluster(self) -> None:
        layout = self.layout
        with self.progress.step(f"etcd cluster healthy ({len(layout.etcd_hosts)} members, TLS)"):
            for h in layout.etcd_hosts:
                control.wait_ready(layout, h, "etcd", ETCD_TIMEOUT)
            _wait("etcd cluster", lambda: etcd.healthy(layout), ETCD_TIMEOUT)

    def control_plane(self) -> None:
        """The API server (its own progress steps); in flannel=kube mode its controllers too."""
        if self.k8s:
            self.k8s.start_control_plane()
        if self.kube_flannel:
            # the Nodes need podCIDRs before Docker starts (docker0 takes its --bip from
            # the host's subnet), so the controller-manager starts here
            if self.k8s is None or self.k8s.error is not None:
                raise ProvisionerError("option flannel=kube needs Kubernetes: "
                                       f"{self.k8s.error if self.k8s else 'kubernetes=false'}")
            # waited for right after its start, where the default flow has Docker's start
            # in between: twice the usual bound
            self.k8s.start_components(timeout=2 * kubernetes.API_TIMEOUT)

    def pod_overlay(self) -> None:
        title = ("overlay (Kubernetes mode: podCIDRs, Node annotations, ConfigMap)"
                 if self.kube_flannel else f"overlay ({self.env['flannel']})")
        with self.progress.step(title):
            if self.kube_flannel:
                self._overlay_kube()
            elif self.real_flannel:
                self._overlay_flanneld()
            else:
                overlay.write_model(self.layout, self.macs)

    def _overlay_kube(self) -> None:
        assert self.k8s is not None
        subnets = overlay_kube.bring_up(self.layout, self.k8s.control)
        if self.layout.runtime == "containerd":  # the pods' subnet is the Node's podCIDR
            for h in self.hosts:
                containerd.write_cni(h, subnets[h.name])
        self._launch_docker(state.read(self.sd) or {})

    def _overlay_flanneld(self) -> None:
        overlay.write_config(self.layout)
        for h in self.hosts:
            control.launch(self.layout, self.data, h, "flannel")
        for h in self.hosts:
            bip = overlay.read_subnet(h)
            with state.edit(self.sd) as st:
                st["hosts"][h.name]["bip"] = bip
        self._launch_docker(state.read(self.sd) or {})

    def _launch_docker(self, data: state.State) -> None:
        if self.layout.docker:
            for h in self.hosts:
                control.launch(self.layout, data, h, "docker")

    def sshd_answering(self) -> None:
        with self.progress.step("sshd answering on every host"):
            for h in self.hosts:
                control.wait_ready(self.layout, h, "sshd", SSH_TIMEOUT)

    def ostree_sysroots(self) -> None:
        env = self.env
        with self.progress.step("ostree sysroots deployed"):
            try:
                for name, fut in self.trees.items():
                    info = fut.result()
                    with state.edit(self.sd) as st:
                        st["hosts"][name]["ostree"] = info
                    env[f"ostree_sysroot.{name}"] = info["sysroot"]
                    env[f"ostree_booted_file.{name}"] = str(self.layout.host(name).dir
                                                            / "booted-deployment")
                    env[f"ostree_booted_view.{name}"] = info["view"]
                env["ostree"] = "available"
                env["ostree_os"] = OS_NAME
                env["ostree_branch"] = ostree.BRANCH
                env["ostree_refspec"] = ostree.REFSPEC
            except ProvisionerError as exc:
                env["ostree"] = f"unavailable: {exc}"
                with state.edit(self.sd) as st:
                    st["ostree_available"] = False
                self.progress.note(f"ostree unavailable: {exc}")

    def container_runtime(self) -> None:
        layout = self.layout
        if layout.runtime == "containerd":
            self.env["docker"] = "none (runtime=containerd)"
            with self.progress.step("containerd answering on every host"):
                self.env.update(_containerd_up(layout, self.progress))
        elif not layout.docker:
            self.env["docker"] = "disabled (option docker=false)"
        else:
            assert self.busybox_tar is not None
            with self.progress.step("docker daemons and busybox image"):
                self.env.update(_docker_up(layout, self._pool(), self.busybox_tar,
                                           self.progress))

    def kubernetes_nodes(self) -> None:
        """Kubelets and nodes (their own progress steps), or why Kubernetes is off."""
        if not self.k8s:
            self.env["kubernetes"] = "disabled (option kubernetes=false)"
            return
        now = state.read(self.sd) or {}
        runtime_ok = (self.layout.docker and now.get("docker_available", True)) or bool(
            now.get("containerd_available"))
        self.env.update(self.k8s.finish(runtime_ok))

    def collect_versions(self) -> None:
        for key, fut in self.versions.items():
            self.env[key] = fut.result()

    def lab_model(self) -> Lab:
        return make_lab(self.layout, state.read(self.sd) or {}, self.env)


def _docker_up(layout: Layout, pool: ThreadPoolExecutor, busybox_tar: Future[Path],
               progress: Progress) -> dict[str, str]:
    """Wait for every dockerd and import busybox; on failure mark docker unavailable."""
    env: dict[str, str] = {}
    try:
        for h in layout.hosts:
            control.wait_ready(layout, h, "docker", DOCKER_TIMEOUT)
        busybox_tar.result()
        list(pool.map(lambda h: docker.import_busybox(layout, h), layout.hosts))
    except ProvisionerError as exc:
        _docker_unavailable(layout, str(exc), progress)
        return {"docker": f"unavailable: {exc}"}
    env["docker"] = "available"
    env["docker_image"] = docker.IMAGE
    for h in layout.hosts:
        env[f"docker_socket.{h.name}"] = str(h.docker_socket)
    return env


def _containerd_up(layout: Layout, progress: Progress) -> dict[str, str]:
    """Wait for every containerd; on failure mark it unavailable (images come with k8s)."""
    try:
        for h in layout.hosts:
            control.wait_ready(layout, h, "containerd", CONTAINERD_TIMEOUT)
    except ProvisionerError as exc:
        progress.note(f"containerd unavailable: {exc}")
        for h in layout.hosts:
            control.act(layout.state_dir, h.name, "containerd", "stop", timeout=10)
        with state.edit(layout.state_dir) as st:
            st["containerd_available"] = False
        return {"containerd": f"unavailable: {exc}"}
    env = {"containerd": "available", "cni": f"{containerd.CNI_NETWORK}: bridge "
           f"{containerd.BRIDGE} + host-local (the host's flannel subnet and MTU), "
           f"plugins in {containerd.CNI_BIN_DIR}"}
    for h in layout.hosts:
        env[f"containerd_socket.{h.name}"] = str(h.run_dir / "containerd" / "containerd.sock")
    return env


def _docker_unavailable(layout: Layout, reason: str, progress: Progress) -> None:
    progress.note(f"docker unavailable: {reason}")
    for h in layout.hosts:
        control.act(layout.state_dir, h.name, "docker", "stop", timeout=10)
    with state.edit(layout.state_dir) as st:
        st["docker_available"] = False
