"""etcd members (Debian 3.4) with TLS on client and peer ports; the lab reaches them through
the library's client and health check (:mod:`stackcheck.etcd`), as the checks do."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from stackcheck_provisioners.hostlab.layout import HostPlan, Layout, tls_files

if TYPE_CHECKING:  # stackcheck.lab (pydantic) is imported where used: the control CLI needs none
    from etcd3gw.client import Etcd3Client

    from stackcheck.etcd.cluster import Member
    from stackcheck.lab import EtcdAccess

# the etcd client (etcd3gw, requests) is imported where it is used: the lab's control CLI
# (a reboot, a restart, over SSH) then starts without it, ~0.2 s of CPU less each time

ETCD = "/usr/bin/etcd"
#: test-only: ``{"--flag": "value"}`` in this file of a host's dir sets those flags of its etcd
OVERRIDES_FILE = "etcd-overrides.json"


def endpoint(host: HostPlan) -> str:
    return f"https://{host.address}:2379"


def endpoints(layout: Layout) -> list[str]:
    return [endpoint(h) for h in layout.etcd_hosts]


def access(layout: Layout) -> EtcdAccess:
    """How the lab's inventory, and the lab itself, reach etcd: every member, the lab's
    client certificate, its CA."""
    from stackcheck.lab import EtcdAccess

    files = tls_files(layout)
    return EtcdAccess(endpoints=endpoints(layout), ca_file=files["ca"],
                      cert_file=files["cert"], key_file=files["key"])


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


def client(layout: Layout, host: HostPlan, timeout: float = 3) -> Etcd3Client:
    """The library's client of one member (the lab CA pinned)."""
    from stackcheck.etcd import client_for

    return client_for(access(layout), endpoint(host), timeout)


def members(layout: Layout, timeout: float = 3) -> list[Member]:
    """The library's members of the lab's cluster."""
    from stackcheck.etcd.cluster import members_at
    from stackcheck.lab import Host

    hosts = [Host(name=h.name, address=h.address, roles=["etcd"]) for h in layout.etcd_hosts]
    return members_at(access(layout), hosts, timeout)


def member_ready(layout: Layout, host: HostPlan) -> bool:
    """True once this member answers status and knows a leader."""
    from stackcheck.etcd import leader_id

    try:
        status = client(layout, host, timeout=1).status()
    except Exception:  # noqa: BLE001 - not up yet
        return False
    return leader_id(status) != "0"


def ready(layout: Layout, host: HostPlan) -> bool:
    return member_ready(layout, host)


def healthy(layout: Layout) -> bool:
    """The library's health check: every member answers, all name one leader, and a
    linearizable read works through each."""
    from stackcheck.etcd.cluster import healthy as cluster_healthy

    return cluster_healthy(members(layout))


def version() -> str:
    out = subprocess.run([ETCD, "--version"], capture_output=True, text=True).stdout
    first = out.splitlines()[0] if out else ""
    return first.split(":", 1)[-1].strip() or "unknown"
