"""Scan a results folder for key material that must never leave the lab.

Looks for the contents of given secret files (whole, line by line, base64-encoded as in
a kubeconfig's ``client-key-data``), given literal values, and any unredacted PEM
private-key block. Findings name the file and what was found, never the secret.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MIN_LENGTH = 8
_PEM = re.compile(
    rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:\\r|\\n|\s)*(?:Proc-Type|[A-Za-z0-9+/=]{20,})"
)


@dataclass(frozen=True)
class Finding:
    path: Path
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def needles(files: Iterable[Path] = (), values: Iterable[str] = ()) -> list[tuple[str, bytes]]:
    """(label, bytes) pairs to look for: each file's content, its long lines, its base64."""
    found: list[tuple[str, bytes]] = []
    for path in files:
        try:
            data = Path(path).read_bytes().strip()
        except OSError:
            continue
        label = f"contents of {Path(path).name}"
        if len(data) >= MIN_LENGTH:
            found.append((label, data))
            found.append((f"{label} (base64)", base64.b64encode(data)))
            found.append((f"{label} (base64)", base64.b64encode(data + b"\n")))
        for line in data.splitlines():
            line = line.strip()
            if len(line) >= 24 and not line.startswith(b"-----"):
                found.append((f"a line of {Path(path).name}", line))
    for value in values:
        if len(value) >= MIN_LENGTH:
            found.append(("a secret value", value.encode()))
    return found


def scan(folder: Path, secrets: Iterable[tuple[str, bytes]] = (), *, pem: bool = True,
         ) -> list[Finding]:
    """Every file under ``folder`` holding a secret or a private-key block."""
    secrets = list(secrets)
    findings: list[Finding] = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        seen = set()
        for label, needle in secrets:
            if label not in seen and needle in data:
                seen.add(label)
                findings.append(Finding(path, label))
        if pem and _PEM.search(data):
            findings.append(Finding(path, "a PEM private-key block"))
    return findings


def lab_secret_files(lab: object) -> list[Path]:
    """The key files of a ``stackcheck.lab.Lab``: SSH identities and the etcd client key."""
    files = []
    ssh = getattr(lab, "ssh", None)
    if ssh is not None and ssh.identity_file:
        files.append(Path(ssh.identity_file))
    for host in getattr(lab, "hosts", []):
        if host.ssh is not None and host.ssh.identity_file:
            files.append(Path(host.ssh.identity_file))
    etcd = getattr(lab, "etcd", None)
    if etcd is not None and etcd.key_file:
        files.append(Path(etcd.key_file))
    return list(dict.fromkeys(files))
