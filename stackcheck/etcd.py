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
