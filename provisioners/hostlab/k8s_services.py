"""The Kubernetes services of a local lab: which host runs what, their argv and readiness.

The control plane (kube-apiserver, kube-controller-manager, kube-scheduler) runs on the first
host; kubelet and kube-proxy on every host (see :mod:`stackcheck_provisioners.hostlab.kubelet`).
What is enabled lives in the state file under ``kubernetes``: ``bin_dir``, ``control_plane`` (a host
name) and ``kubelets`` (bool). :mod:`stackcheck_provisioners.local.control` starts/stops them like
any other service.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import etcd, kubelet, state
from stackcheck_provisioners.hostlab.k8s_paths import API_PORT, SERVICE_CIDR, k8s_dir
from stackcheck_provisioners.hostlab.layout import FLANNEL_NETWORK, HostPlan, Layout
from stackcheck_provisioners.hostlab.proc import run

if TYPE_CHECKING:
    import requests

CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
NODE = ("kubelet", "kube-proxy")
SERVICES = CONTROL_PLANE + NODE
SECURE_PORTS = {"kube-controller-manager": 10257, "kube-scheduler": 10259}
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


def services_of(data: state.State, host: HostPlan) -> list[str]:
    """The Kubernetes services ``host`` runs, in start order."""
    k8s = data.get("kubernetes") or {}
    out: list[str] = []
    if k8s.get("bin_dir") and k8s.get("control_plane") == host.name:
        out += CONTROL_PLANE
    if k8s.get("bin_dir") and k8s.get("kubelets"):
        out += NODE
    return out


def etcd_prefix(layout: Layout) -> str:
    return f"/registry-{layout.name}"


def apiserver_argv(layout: Layout, host: HostPlan, bins: Path) -> list[str]:
    d, ca = k8s_dir(layout), layout.pki_dir / "ca.crt"
    return [
        str(bins / "kube-apiserver"),
        f"--advertise-address={host.address}",
        f"--bind-address={host.address}",
        f"--secure-port={API_PORT}",
        "--insecure-port=0",
        f"--etcd-servers={','.join(etcd.endpoints(layout))}",
        f"--etcd-cafile={ca}",
        f"--etcd-certfile={d / 'apiserver-etcd-client.crt'}",
        f"--etcd-keyfile={d / 'apiserver-etcd-client.key'}",
        f"--etcd-prefix={etcd_prefix(layout)}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--tls-cert-file={d / 'apiserver.crt'}",
        f"--tls-private-key-file={d / 'apiserver.key'}",
        f"--client-ca-file={ca}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        f"--service-account-key-file={d / 'sa.pub'}",
        f"--service-account-signing-key-file={d / 'sa.key'}",
        f"--service-account-issuer={SA_ISSUER}",
        f"--kubelet-client-certificate={d / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={d / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={ca}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        "--profiling=false",
        # v1.20's watch cache can leave watchers that get no more events after it reinitializes
        # on an etcd leader loss (kubernetes#116122, fixed in 1.27): controllers and
        # kube-proxy then miss new Services. Without it, watches go to etcd and end cleanly.
        "--watch-cache=false",
    ]


def _component_argv(layout: Layout, host: HostPlan, bins: Path, name: str) -> list[str]:
    """Flags common to controller-manager and scheduler (``name`` without ``kube-``)."""
    d = k8s_dir(layout)
    kubeconfig = d / f"{name}.kubeconfig"
    return [
        str(bins / f"kube-{name}"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--client-ca-file={layout.pki_dir / 'ca.crt'}",
        # start (and keep retrying) while kube-apiserver is down, e.g. on a reboot of its host
        "--authentication-tolerate-lookup-failure=true",
        # one instance: with leader election it exits when it cannot renew its lease (an etcd
        # fault), and nothing here restarts it as systemd or a kubelet would
        "--leader-elect=false",
        f"--bind-address={host.address}",
        f"--secure-port={SECURE_PORTS[f'kube-{name}']}",
        "--port=0",
        f"--tls-cert-file={d / f'{name}.crt'}",
        f"--tls-private-key-file={d / f'{name}.key'}",
        "--profiling=false",
    ]


def argv(layout: Layout, data: state.State, host: HostPlan, service: str) -> list[str]:
    """The service's command line (run inside the host's namespaces)."""
    k8s = data.get("kubernetes") or {}
    if not k8s.get("bin_dir"):
        raise ProvisionerError(f"{host.name}: this lab runs no Kubernetes")
    bins = Path(k8s["bin_dir"])
    d = k8s_dir(layout)
    if service == "kube-apiserver":
        return apiserver_argv(layout, host, bins)
    if service == "kube-controller-manager":
        return [
            *_component_argv(layout, host, bins, "controller-manager"),
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={d / 'sa.key'}",
            f"--root-ca-file={layout.pki_dir / 'ca.crt'}",
            f"--cluster-signing-cert-file={layout.pki_dir / 'ca.crt'}",
            f"--cluster-signing-key-file={layout.pki_dir / 'ca.key'}",
            f"--cluster-name={layout.name}",
            *(["--allocate-node-cidrs=true", f"--cluster-cidr={FLANNEL_NETWORK}",
                "--node-cidr-mask-size=24"] if layout.flannel == "kube" else []),
        ]
    if service == "kube-scheduler":
        return _component_argv(layout, host, bins, "scheduler")
    if service == "kubelet":
        return kubelet.kubelet_argv(layout, host, bins)
    if service == "kube-proxy":
        return kubelet.proxy_argv(layout, host, bins)
    raise ProvisionerError(f"unknown service {service!r}")


def session(layout: Layout, client_cert: bool = True) -> requests.Session:
    """A requests session trusting only the lab CA, with the admin client certificate."""
    import requests  # here: the control CLI starts without it

    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE must not replace the lab CA
    s.verify = str(layout.pki_dir / "ca.crt")
    if client_cert:
        d = k8s_dir(layout)
        s.cert = (str(d / "admin.crt"), str(d / "admin.key"))
    return s


def api_url(host: HostPlan, path: str) -> str:
    return f"https://{host.address}:{API_PORT}{path}"


def _https_ok(layout: Layout, url: str, client_cert: bool) -> bool:
    import requests

    try:
        with session(layout, client_cert) as s:
            return s.get(url, timeout=2).status_code == 200
    except (requests.RequestException, OSError):
        return False


def ready(layout: Layout, host: HostPlan, service: str) -> bool:
    """True once the service answers its health endpoint."""
    if service == "kube-apiserver":
        return _https_ok(layout, api_url(host, "/readyz"), True)
    if service in SECURE_PORTS:
        return _https_ok(layout, f"https://{host.address}:{SECURE_PORTS[service]}/healthz", False)
    if service == "kubelet":
        return kubelet.kubelet_ready(layout, host)
    if service == "kube-proxy":
        return kubelet.proxy_ready(layout, host)
    raise ProvisionerError(f"unknown service {service!r}")


def version(bins: Path) -> str:
    """The Kubernetes version of the binaries in ``bins`` (``unknown`` if they do not say)."""
    out = run([str(bins / "kube-apiserver"), "--version"], check=False).stdout.strip()
    return out.removeprefix("Kubernetes ").strip() or "unknown"
