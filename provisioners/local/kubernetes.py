"""Kubernetes in the local lab: a real control plane on h1 and a real kubelet on every host.

Bring-up, driven by :mod:`stackcheck_provisioners.local.build` in three calls:

1. :class:`BringUp` (before dockerd starts): finds or builds the binaries
   (``stackcheck_builders.kubernetes.ensure_binaries``, honouring option ``k8s_bin_dir``) and makes
   the certificates in the background; points each dockerd at the runc wrapper.
2. :meth:`BringUp.start_control_plane` (once etcd is healthy): starts kube-apiserver (TLS,
   ``--authorization-mode=Node,RBAC``, the lab's etcd over TLS under ``/registry-<lab>``).
3. :meth:`BringUp.finish` (once the runtime is up): controller-manager and scheduler, the
   offline images (``docker import``, or ``ctr -n k8s.io images import`` with
   ``runtime=containerd``), kubelet (dockershim, or CRI to containerd) and kube-proxy per
   host; waits (bounded) until every Node is Ready and untainted and the ``default`` service
   account has its token. Returns the environment facts (``kubernetes``, ``kubernetes_version``, …).

If the control plane cannot run, the lab comes up without Kubernetes
(``kubernetes: unavailable: <reason>``); if kubelets cannot, the control plane stays and the
kubelets are reported unavailable. Nothing is ever simulated.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import requests

from stackcheck.lab import KubernetesAccess
from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import k8s_images, k8s_pki, kubelet, state
from stackcheck_provisioners.hostlab.k8s_nodes import TAINTED, node_state
from stackcheck_provisioners.hostlab.k8s_services import (
    CONTROL_PLANE,
    NODE,
    SERVICES,
    api_url,
    etcd_prefix,
    session,
    version,
)
from stackcheck_provisioners.hostlab.layout import HostPlan, Layout
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.local import control

__all__ = ["SERVICES", "BringUp", "access", "version"]

API_TIMEOUT = 90
COMPONENT_TIMEOUT = 60
NODES_TIMEOUT = 120


def access(layout: Layout, data: state.State) -> KubernetesAccess | None:
    """The inventory's ``kubernetes`` entry, when the control plane runs."""
    if not (data.get("kubernetes") or {}).get("bin_dir"):
        return None
    return KubernetesAccess(kubeconfig=k8s_pki.admin_kubeconfig(layout))


class BringUp:
    """One lab's Kubernetes bring-up (see the module docstring for the order of calls)."""

    def __init__(self, layout: Layout, pool: ThreadPoolExecutor, progress: Progress) -> None:
        self.layout = layout
        self.pool = pool
        self.progress = progress
        self.control = layout.hosts[0]
        self.error: str | None = None
        self.components_started = False
        self.version = "unknown"
        sd = layout.state_dir
        state.add_resource(sd, "dir", str(k8s_pki.k8s_dir(layout)))
        with state.edit(sd) as st:
            st["kubernetes"] = {"control_plane": self.control.name, "kubelets": False,
                                "bin_dir": None}
        if layout.docker or layout.runtime != "docker":
            for host in layout.hosts:
                kubelet.prepare(layout, host)
        self._bins: Future[Path] = pool.submit(self._binaries)
        self._certs: Future[None] = pool.submit(self._make_certs)

    def _binaries(self) -> Path:
        from stackcheck_builders.kubernetes import Progress as BuildProgress
        from stackcheck_builders.kubernetes import ensure_binaries

        given = self.layout.k8s_bin_dir
        return ensure_binaries(bin_dir=Path(given) if given else None,
                               progress=BuildProgress(self.progress.console))

    def _make_certs(self) -> None:
        k8s_pki.make_control_plane(self.layout, self.control)
        for host in self.layout.hosts:
            k8s_pki.make_node(self.layout, self.control, host)

    def start_control_plane(self) -> None:
        """Start kube-apiserver (no wait); on missing binaries note why and go on without."""
        from stackcheck_builders.kubernetes import K8sBuildError

        with self.progress.step("Kubernetes binaries and certificates"):
            try:
                bins = self._bins.result()
                self._certs.result()
            except (K8sBuildError, ProvisionerError, OSError) as exc:
                self.error = f"no Kubernetes binaries: {exc}"
                self.progress.note(f"Kubernetes unavailable: {self.error}")
                return
            self.version = version(bins)
        with state.edit(self.layout.state_dir) as st:
            st["kubernetes"]["bin_dir"] = str(bins)
        data = state.read(self.layout.state_dir) or {}
        control.launch(self.layout, data, self.control, "kube-apiserver")

    def start_components(self, timeout: float = API_TIMEOUT) -> None:
        """Wait for kube-apiserver, then start controller-manager and scheduler (once)."""
        if self.error is not None or self.components_started:
            return
        with self.progress.step("kube-apiserver ready (TLS, RBAC, etcd "
                                f"{etcd_prefix(self.layout)})"):
            control.wait_ready(self.layout, self.control, "kube-apiserver", timeout)
            data = state.read(self.layout.state_dir) or {}
            for service in CONTROL_PLANE[1:]:
                control.launch(self.layout, data, self.control, service)
        self.components_started = True

    def finish(self, runtime_ok: bool) -> dict[str, str]:
        """Bring up the rest and wait for it; return the environment facts."""
        if self.error is None:
            try:
                self.start_components()
            except ProvisionerError as exc:
                self._disable(str(exc))
        if self.error is not None:
            return {"kubernetes": f"unavailable: {self.error}"}
        kubelets = self._nodes(runtime_ok)
        try:
            with self.progress.step("controller-manager, scheduler, default service account"):
                for service in CONTROL_PLANE[1:]:
                    control.wait_ready(self.layout, self.control, service, COMPONENT_TIMEOUT)
                _wait("the default service account's token", self._default_token,
                      COMPONENT_TIMEOUT)
                if kubelets is None:
                    _wait("nodes without the not-ready taint", self._nodes_usable,
                          COMPONENT_TIMEOUT, self._node_report)
        except ProvisionerError as exc:
            self._disable(str(exc))
            return {"kubernetes": f"unavailable: {self.error}"}
        env = {
            "kubernetes_version": self.version,
            "kubernetes_api": api_url(self.control, ""),
            "kubernetes_etcd_prefix": etcd_prefix(self.layout),
        }
        if kubelets is None:
            env["kubernetes"] = (f"control plane + {len(self.layout.hosts)} kubelets "
                                 f"({self._runtime_words})")
        else:
            env["kubernetes"] = f"control plane only; kubelets unavailable: {kubelets}"
            env["kubelets"] = f"unavailable: {kubelets}"
        return env

    @property
    def _runtime_words(self) -> str:
        return ("containerd over CRI, CNI bridge" if self.layout.runtime == "containerd"
                else "dockershim")

    def _nodes(self, runtime_ok: bool) -> str | None:
        """Start kubelet and kube-proxy everywhere, wait for Ready nodes; None, or why not."""
        if not runtime_ok:
            return (f"{self.layout.runtime} is not available (the kubelets' container "
                    "runtime)")
        hosts = self.layout.hosts
        try:
            with self.progress.step("Kubernetes images (pause, busybox:1.29) in each "
                                    f"{self.layout.runtime}"):
                bins = Path((state.read(self.layout.state_dir) or {})["kubernetes"]["bin_dir"])
                tar = k8s_images.build_pause_tar(self.layout, bins / "pause")
                if self.layout.runtime == "containerd":
                    archives = k8s_images.containerd_archives(self.layout, tar)
                    list(self.pool.map(
                        lambda h: k8s_images.import_containerd(self.layout, h, archives), hosts))
                else:
                    list(self.pool.map(lambda h: k8s_images.import_images(self.layout, h, tar),
                                       hosts))
            with self.progress.step(f"kubelet ({self._runtime_words}) and kube-proxy on "
                                    f"{len(hosts)} hosts"):
                with state.edit(self.layout.state_dir) as st:
                    st["kubernetes"]["kubelets"] = True
                data = state.read(self.layout.state_dir) or {}
                for host in hosts:
                    for service in NODE:
                        control.launch(self.layout, data, host, service)
                for host in hosts:
                    for service in NODE:
                        control.wait_ready(self.layout, host, service, COMPONENT_TIMEOUT)
            with self.progress.step(f"{len(hosts)} nodes Ready"):
                _wait(f"{len(hosts)} Ready nodes", self._nodes_ready, NODES_TIMEOUT,
                      self._node_report)
        except ProvisionerError as exc:
            self.progress.note(f"kubelets unavailable: {exc}")
            self._stop(NODE, hosts)
            with state.edit(self.layout.state_dir) as st:
                st["kubernetes"]["kubelets"] = False
            return str(exc)
        return None

    def _disable(self, reason: str) -> None:
        """Stop every Kubernetes service and record that the lab runs none."""
        self.error = reason
        self.progress.note(f"Kubernetes unavailable: {reason}")
        self._stop(NODE, self.layout.hosts)
        self._stop(CONTROL_PLANE, [self.control])
        with state.edit(self.layout.state_dir) as st:
            st["kubernetes"].update(bin_dir=None, kubelets=False)

    def _stop(self, services: tuple[str, ...], hosts: list[HostPlan]) -> None:
        for host in hosts:
            for service in reversed(services):
                control.act(self.layout.state_dir, host.name, service, "stop", timeout=15)

    # --- API checks with the admin certificate ----------------------------------------

    def _get(self, path: str) -> dict:
        with session(self.layout) as s:
            reply = s.get(api_url(self.control, path), timeout=5)
        reply.raise_for_status()
        return reply.json()

    def _node_report(self) -> str:
        try:
            nodes = self._get("/api/v1/nodes")["items"]
        except (requests.RequestException, ValueError) as exc:
            return f"cannot list nodes: {exc}"
        return "; ".join(f"{n['metadata']['name']}: {node_state(n)}" for n in nodes) or "none"

    def _nodes_in(self, states: tuple[str, ...]) -> bool:
        try:
            nodes = self._get("/api/v1/nodes")["items"]
        except (requests.RequestException, ValueError):
            return False
        found = {n["metadata"]["name"] for n in nodes if node_state(n) in states}
        return found >= {h.name for h in self.layout.hosts}

    def _nodes_ready(self) -> bool:
        return self._nodes_in(("Ready", TAINTED))

    def _nodes_usable(self) -> bool:
        return self._nodes_in(("Ready",))

    def _default_token(self) -> bool:
        try:
            sa = self._get("/api/v1/namespaces/default/serviceaccounts/default")
        except (requests.RequestException, ValueError):
            return False
        return bool(sa.get("secrets"))


def _wait(what: str, check, timeout: float, report=None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            detail = f": {report()}" if report else ""
            raise ProvisionerError(f"{what} not reached in {timeout:g}s{detail}")
        time.sleep(0.5)
