"""etcd members (Debian 3.4) with TLS on client and peer ports, and a TLS client for them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import etcd3gw
import requests

from provisioners.hostlab.layout import HostPlan, Layout
from provisioners.hostlab.pki import tls_files

ETCD = "/usr/bin/etcd"
#: test-only: ``{"--flag": "value"}`` in this file of a host's dir sets those flags of its etcd
OVERRIDES_FILE = "etcd-overrides.json"


def endpoints(layout: Layout) -> list[str]:
    return [f"https://{h.address}:2379" for h in layout.etcd_hosts]


def overrides_path(host: HostPlan) -> Path:
    """Where a harness test puts flag overrides (e.g. a wrong ``--initial-cluster``)."""
    return host.dir / OVERRIDES_FILE


def argv(layout: Layout, host: HostPlan) -> list[str]:
    """etcd's command line; flags in :func:`overrides_path` replace the defaults or are added."""
    path = overrides_path(host)
    overrides: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    out = []
    for arg in _default_argv(layout, host):
        flag = arg.split("=", 1)[0]
        out.append(f"{flag}={overrides.pop(flag)}" if flag in overrides else arg)
    return out + [f"{flag}={value}" for flag, value in overrides.items()]


def _default_argv(layout: Layout, host: HostPlan) -> list[str]:
    pki = layout.pki_dir
    cert, key = pki / f"{host.name}-etcd.crt", pki / f"{host.name}-etcd.key"
    cluster = ",".join(f"{h.name}=https://{h.address}:2380" for h in layout.etcd_hosts)
    return [
        ETCD,
        f"--name={host.name}",
        f"--data-dir={host.dir / 'etcd'}",
        f"--listen-client-urls=https://{host.address}:2379",
        f"--advertise-client-urls=https://{host.address}:2379",
        f"--listen-peer-urls=https://{host.address}:2380",
        f"--initial-advertise-peer-urls=https://{host.address}:2380",
        f"--initial-cluster={cluster}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token=stackcheck-{layout.name}-{layout.run_id}",
        f"--cert-file={cert}", f"--key-file={key}",
        f"--trusted-ca-file={pki / 'ca.crt'}", "--client-cert-auth",
        f"--peer-cert-file={cert}", f"--peer-key-file={key}",
        f"--peer-trusted-ca-file={pki / 'ca.crt'}", "--peer-client-cert-auth",
        "--logger=zap", "--log-outputs=stderr",
    ]


def client(layout: Layout, host: HostPlan, timeout: float = 3) -> etcd3gw.Etcd3Client:
    """An etcd3gw client for one member, trusting the lab CA only (ignores REQUESTS_CA_BUNDLE)."""
    files = tls_files(layout)
    session = requests.Session()
    session.trust_env = False
    session.verify = str(files["ca"])
    session.cert = (str(files["cert"]), str(files["key"]))
    return etcd3gw.client(host=host.address, port=2379, protocol="https", session=session,
                          timeout=timeout, api_path="/v3/")


def member_ready(layout: Layout, host: HostPlan) -> bool:
    """True once this member answers status and knows a leader."""
    try:
        status = client(layout, host, timeout=1).status()
    except Exception:  # noqa: BLE001 - not up yet
        return False
    return str(status.get("leader", "0")) not in ("0", "")


def ready(layout: Layout, host: HostPlan) -> bool:
    return member_ready(layout, host)


def healthy(layout: Layout) -> bool:
    """True if every member answers and the cluster accepts a linearizable read."""
    hosts = layout.etcd_hosts
    if not all(member_ready(layout, h) for h in hosts):
        return False
    try:
        client(layout, hosts[0], timeout=3).get("/stackcheck/health")
    except Exception:  # noqa: BLE001
        return False
    return True


def version() -> str:
    out = subprocess.run([ETCD, "--version"], capture_output=True, text=True).stdout
    first = out.splitlines()[0] if out else ""
    return first.split(":", 1)[-1].strip() or "unknown"
