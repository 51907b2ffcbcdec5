"""The lab's CA, etcd certificates and SSH keys, made with ``cryptography``.

Files (all in 0700 dirs, keys 0600):
``pki/ca.crt``, ``pki/ca.key``, ``pki/<host>-etcd.crt|key`` (server+peer, host IP in SANs),
``pki/client.crt|key`` (the harness's etcd client cert);
``ssh/id_ed25519[.pub]`` (client key), ``ssh/authorized_keys``, ``ssh/known_hosts``,
``hosts/<host>/ssh_host_ed25519_key[.pub]``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stackcheck_provisioners.hostlab.layout import Layout, tls_files  # noqa: F401 (re-exported)

VALID_DAYS = 365


def _secure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _write_key(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    ips: list[str] | None = None,
    usages: list[x509.ObjectIdentifier] | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if ips is not None:
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        sans.append(x509.DNSName(subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _save(base: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    base.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(base.with_suffix(".key"), _pem_key(key))


def make_tls(layout: Layout) -> None:
    """CA, one server+peer cert per etcd host, and the harness's client cert."""
    d = _secure_dir(layout.pki_dir)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"stackcheck {layout.name} CA ({layout.run_id})", "stackcheck")
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    _save(d / "ca", ca, ca_key)
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    for host in layout.hosts:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(_name(host.name), key, ca_name, ca_key, ips=[host.address], usages=both)
        _save(d / f"{host.name}-etcd", cert, key)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(_name("stackcheck-client", "stackcheck"), key, ca_name, ca_key,
                 usages=[ExtendedKeyUsageOID.CLIENT_AUTH])
    _save(d / "client", cert, key)


def _ed25519() -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return private, public


def make_ssh(layout: Layout) -> None:
    """Client key, authorized_keys, per-host host keys and the pinned known_hosts."""
    d = _secure_dir(layout.ssh_dir)
    private, public = _ed25519()
    _write_key(d / "id_ed25519", private)
    (d / "id_ed25519.pub").write_text(f"{public} stackcheck-{layout.name}\n")
    (d / "authorized_keys").write_text(f"{public} stackcheck-{layout.name}\n")
    lines = []
    for host in layout.hosts:
        hd = _secure_dir(host.dir)
        private, public = _ed25519()
        _write_key(hd / "ssh_host_ed25519_key", private)
        (hd / "ssh_host_ed25519_key.pub").write_text(f"{public} {host.name}\n")
        lines.append(f"{host.address} {public}\n")
    (d / "known_hosts").write_text("".join(lines))


