"""Kubernetes certificates from the lab's CA, kubeconfigs and the service-account key pair.

In ``<state_dir>/kubernetes/`` (0700, keys 0600): ``apiserver.crt|key`` (serving: the control
host's IP, the service IP and the ``kubernetes.default`` names in SANs),
``apiserver-kubelet-client.crt|key`` (O=system:masters), ``apiserver-etcd-client.crt|key``,
``sa.key|pub``, ``admin.crt|key`` and
``admin.kubeconfig`` (O=system:masters), ``controller-manager|scheduler.crt|key|kubeconfig``
(also their serving certs), ``kube-proxy.kubeconfig``. Per host in ``hosts/<h>/k8s/``:
``kubelet.crt|key`` (serving) and ``kubelet.kubeconfig`` (O=system:nodes, CN=system:node:<h>).
Every file refers to the lab's CA (``pki/ca.crt``), which also signs pod-facing certificates
(``--cluster-signing-*``).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stackcheck_provisioners.hostlab.k8s_paths import (  # noqa: F401 (re-exported)
    API_PORT,
    SERVICE_CIDR,
    SERVICE_IP,
    k8s_dir,
    node_dir,
)
from stackcheck_provisioners.hostlab.layout import HostPlan, Layout

VALID_DAYS = 365
API_NAMES = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local", "localhost"]

Key = ec.EllipticCurvePrivateKey


def admin_kubeconfig(layout: Layout) -> Path:
    return k8s_dir(layout) / "admin.kubeconfig"


@dataclass(frozen=True)
class CA:
    cert: x509.Certificate
    key: Key
    pem: bytes

    @classmethod
    def load(cls, layout: Layout) -> CA:
        pem = (layout.pki_dir / "ca.crt").read_bytes()
        key = serialization.load_pem_private_key((layout.pki_dir / "ca.key").read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(x509.load_pem_x509_certificate(pem), key, pem)


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes

    def save(self, base: Path) -> None:
        """Write ``<base>.crt`` and ``<base>.key`` (0600)."""
        base.with_suffix(".crt").write_bytes(self.cert_pem)
        _write_secret(base.with_suffix(".key"), self.key_pem)


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def issue(ca: CA, cn: str, org: str | None = None, *, ips: Sequence[str] = (),
          dns: Sequence[str] = (), server: bool = False, client: bool = False) -> Issued:
    """A new key and a certificate for it signed by the lab CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    now = dt.datetime.now(dt.UTC)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    sans += [x509.DNSName(d) for d in dns]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def kubeconfig(server: str, ca: CA, user: str, creds: Issued, cluster: str) -> str:
    """A kubeconfig with the CA and the client credentials embedded."""
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    context = f"{user}@{cluster}"
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": b64(ca.pem)}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(creds.cert_pem),
            "client-key-data": b64(creds.key_pem)}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }, sort_keys=False)


def api_server(control: HostPlan) -> str:
    return f"https://{control.address}:{API_PORT}"


def make_control_plane(layout: Layout, control: HostPlan) -> None:
    """Certificates, service-account keys and kubeconfigs of the control plane and kube-proxy."""
    d = k8s_dir(layout)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    ca = CA.load(layout)
    server = api_server(control)
    issue(ca, "kube-apiserver", ips=[control.address, SERVICE_IP, "127.0.0.1"],
          dns=[control.name, *API_NAMES], server=True).save(d / "apiserver")
    issue(ca, "kube-apiserver-kubelet-client", "system:masters",
          client=True).save(d / "apiserver-kubelet-client")
    issue(ca, "kube-apiserver-etcd-client", client=True).save(d / "apiserver-etcd-client")
    sa = ec.generate_private_key(ec.SECP256R1())
    _write_secret(d / "sa.key", _key_pem(sa))
    (d / "sa.pub").write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    admin = issue(ca, "stackcheck-admin", "system:masters", client=True)
    admin.save(d / "admin")
    _write_secret(d / "admin.kubeconfig", kubeconfig(server, ca, "admin", admin,
                                                       layout.name).encode())
    for name in ("controller-manager", "scheduler"):
        user = f"system:kube-{name}"
        creds = issue(ca, user, ips=[control.address, "127.0.0.1"], dns=[control.name],
                      server=True, client=True)
        creds.save(d / name)
        _write_secret(d / f"{name}.kubeconfig",
                      kubeconfig(server, ca, user, creds, layout.name).encode())
    proxy = issue(ca, "system:kube-proxy", client=True)
    _write_secret(d / "kube-proxy.kubeconfig",
                  kubeconfig(server, ca, "system:kube-proxy", proxy, layout.name).encode())


def make_node(layout: Layout, control: HostPlan, host: HostPlan) -> None:
    """A kubelet's serving certificate and its node client kubeconfig."""
    d = node_dir(host)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    ca = CA.load(layout)
    issue(ca, host.name, ips=[host.address], dns=[host.name], server=True).save(d / "kubelet")
    user = f"system:node:{host.name}"
    creds = issue(ca, user, "system:nodes", client=True)
    _write_secret(d / "kubelet.kubeconfig",
                  kubeconfig(api_server(control), ca, user, creds, layout.name).encode())
