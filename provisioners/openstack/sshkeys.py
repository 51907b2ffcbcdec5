"""The lab's SSH keypair, the port-22 probe, and host keys for known_hosts."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

#: ``probe(address, port, timeout) -> bool``: is the port accepting connections?
Probe = Callable[[str, int, float], bool]
#: ``keyscan(address, port, timeout) -> ["ssh-ed25519 AAAA...", ...]``
Keyscan = Callable[[str, int, float], list[str]]

KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512")


def generate_keypair(private_path: Path, key_type: str = "ed25519") -> str:
    """Write a new private key (mode 0600) and return the OpenSSH public key line."""
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    key = ed25519.Ed25519PrivateKey.generate() if key_type == "ed25519" else \
        rsa.generate_private_key(public_exponent=65537, key_size=4096)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.unlink(missing_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    private_path.with_suffix(".pub").write_text(public.decode() + "\n")
    return public.decode()


def tcp_probe(address: str, port: int = 22, timeout: float = 3.0) -> bool:
    """True when something accepts a TCP connection on ``address:port``."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def paramiko_keyscan(address: str, port: int = 22, timeout: float = 10.0) -> list[str]:
    """The host's public keys, one SSH handshake per key type (like ssh-keyscan)."""
    import paramiko

    found: list[str] = []
    for key_type in KEY_TYPES:
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except OSError:
            continue
        transport = paramiko.Transport(sock)
        try:
            transport.get_security_options().key_types = [key_type]
            transport.start_client(timeout=timeout)
            key = transport.get_remote_server_key()
            found.append(f"{key.get_name()} {key.get_base64()}")
        except (paramiko.SSHException, OSError, ValueError):
            continue  # the server has no key of this type
        finally:
            transport.close()
    return found


def write_known_hosts(path: Path, keys: Iterable[tuple[str, list[str]]]) -> Path:
    """known_hosts lines ``<address> <type> <base64>`` for each (address, keys)."""
    lines = [f"{address} {key}" for address, host_keys in keys for key in host_keys]
    path.write_text("".join(line + "\n" for line in lines))
    return path
