"""flannel in etcd mode: the config and leases under ``<prefix>`` (etcd's v3 keyspace, which
flannel ≥ 0.18 uses), and a probe of etcd's v2 store, where flannel < 0.18 keeps them.

Reading and writing go through the same keys here, so a lab's plumbing (writing) and the
checks (reading) cannot disagree on where flannel's data live."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from etcd3gw.client import Etcd3Client

from stackcheck.etcd import session_for
from stackcheck.flannel.model import (
    Lease,
    NetworkConfig,
    compact,
    parse_config,
    parse_lease,
    subnet_key,
)
from stackcheck.lab import EtcdAccess

V2_ADVICE = (
    "flannel < 0.18 keeps its keys in etcd's v2 API; stackcheck reads the v3 keyspace "
    "that flannel ≥ 0.18 uses: upgrade flannel (its etcd mode then writes v3 keys), "
    "or copy the config into v3 (etcdctl get/put with ETCDCTL_API=3) and restart flanneld "
    "so it writes its leases there"
)


def _key(meta: dict) -> str:
    return meta["key"] if isinstance(meta["key"], str) else meta["key"].decode()


def config_key(prefix: str) -> str:
    return f"{prefix}/config"


def subnets_prefix(prefix: str) -> str:
    return f"{prefix}/subnets/"


def lease_key(prefix: str, subnet: str) -> str:
    """``<prefix>/subnets/10.244.1.0-24``: where the lease of ``subnet`` lives."""
    return subnets_prefix(prefix) + subnet_key(subnet)


def write_config(client: Etcd3Client, prefix: str, config: dict) -> None:
    """Put the network config (what an operator writes before starting flanneld)."""
    client.put(config_key(prefix), compact(config))


def write_lease(client: Etcd3Client, prefix: str, subnet: str, attrs: dict,
                lease: object | None = None) -> None:
    """Put one host's lease (``attrs``: :func:`~stackcheck.flannel.model.lease_attrs`), bound
    to the etcd ``lease`` (its TTL) when given, as flanneld does."""
    client.put(lease_key(prefix, subnet), compact(attrs), lease=lease)


def read_config(client: Etcd3Client, prefix: str) -> NetworkConfig:
    key = config_key(prefix)
    values = client.get(key)
    if not values:
        raise LookupError(f"no flannel config at {key}")
    try:
        return parse_config(values[0].decode())
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def read_leases(client: Etcd3Client, prefix: str) -> list[Lease]:
    items = client.get_prefix(subnets_prefix(prefix))
    return [parse_lease(_key(meta), value.decode()) for value, meta in items]


def lease_ttls(client: Etcd3Client, prefix: str) -> dict[str, str]:
    """Lease key -> 'ttl <remaining> s' (or 'no ttl'), for reporting stale leases."""
    out = {}
    for _, meta in client.get_prefix(subnets_prefix(prefix)):
        key = _key(meta)
        lease_id = meta.get("lease")
        if not lease_id:
            out[key] = "no ttl"
            continue
        info = client.post(client.get_url("/kv/lease/timetolive"), json={"ID": int(lease_id)})
        out[key] = f"ttl {info.get('TTL', '?')} s"
    return out


def v2_config(access: EtcdAccess, prefix: str, timeout: float = 3.0) -> str | None:
    """The config flannel < 0.18 wrote through etcd's v2 API (``GET /v2/keys<prefix>/config``),
    or None when no endpoint serves it (v2 disabled, the key absent, or no answer)."""
    with session_for(access) as session:
        for endpoint in access.endpoints:
            url = urlsplit(endpoint)._replace(path=f"/v2/keys{prefix}/config").geturl()
            try:
                reply = session.get(url, timeout=timeout)
            except requests.RequestException:
                continue
            if reply.status_code == 200:
                try:
                    return str(reply.json()["node"]["value"])
                except (ValueError, KeyError, TypeError):
                    return None
            if reply.status_code == 404:
                return None  # v2 disabled ("404 page not found") or the key absent
    return None
