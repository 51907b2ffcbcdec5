"""etcd clients for a lab (etcd3gw over the v3 HTTP gateway, TLS with client certs)."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from etcd3gw.client import Etcd3Client

from stackcheck.lab import EtcdAccess


def client_for(access: EtcdAccess, endpoint: str, timeout: float = 5.0) -> Etcd3Client:
    """A client of one endpoint. The lab CA is pinned even if REQUESTS_CA_BUNDLE is set."""
    url = urlsplit(endpoint)
    session = requests.Session()
    session.trust_env = False  # env CA bundles would override the lab CA
    if access.ca_file:
        session.verify = str(access.ca_file)
    if access.cert_file and access.key_file:
        session.cert = (str(access.cert_file), str(access.key_file))
    return Etcd3Client(
        host=url.hostname or "",
        port=url.port or 2379,
        protocol=url.scheme,
        timeout=timeout,
        session=session,
    )


def clients(access: EtcdAccess, timeout: float = 5.0) -> dict[str, Etcd3Client]:
    """One client per endpoint, keyed by endpoint URL."""
    return {ep: client_for(access, ep, timeout) for ep in access.endpoints}


def member_id(status: dict) -> str:
    """The id of the member that answered a status call (decimal string)."""
    return str(status["header"]["member_id"])


def endpoint_host(endpoint: str) -> str:
    """The host part of an endpoint URL."""
    return urlsplit(endpoint).hostname or ""


def statuses(access: EtcdAccess, timeout: float = 5.0) -> dict[str, dict | Exception]:
    """``maintenance/status`` of every endpoint, or the error it raised."""
    out: dict[str, dict | Exception] = {}
    for endpoint, client in clients(access, timeout).items():
        try:
            out[endpoint] = client.status()
        except Exception as exc:  # noqa: BLE001 - an unreachable member is data here
            out[endpoint] = exc
    return out


def etcdctl_args(access: EtcdAccess, endpoints: list[str]) -> list[str]:
    """etcdctl (v3 API) arguments reaching ``endpoints`` with the lab's TLS files."""
    args = ["etcdctl", f"--endpoints={','.join(endpoints)}", "--command-timeout=10s"]
    if access.ca_file:
        args.append(f"--cacert={access.ca_file}")
    if access.cert_file and access.key_file:
        args += [f"--cert={access.cert_file}", f"--key={access.key_file}"]
    return args


def hashkv(access: EtcdAccess, revision: int) -> dict[str, int]:
    """``endpoint hashkv`` at ``revision`` for every endpoint (needs etcdctl on this machine).

    The v3 HTTP gateway of etcd 3.4 maps only the whole-backend Hash, so HashKV goes
    through etcdctl's gRPC client.
    """
    import json
    import os
    import shutil
    import subprocess

    if shutil.which("etcdctl") is None:
        raise FileNotFoundError("etcdctl is not installed on this machine (Debian etcd-client)")
    args = [*etcdctl_args(access, access.endpoints), "endpoint", "hashkv", f"--rev={revision}",
            "-w", "json"]
    env = {**os.environ, "ETCDCTL_API": "3"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"etcdctl endpoint hashkv failed: {done.stderr.strip()[:500]}")
    return {item["Endpoint"]: int(item["HashKV"]["hash"]) for item in json.loads(done.stdout)}
