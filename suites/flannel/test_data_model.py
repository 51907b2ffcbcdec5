"""flannel's data model in etcd: network config and one sound lease per host."""

import itertools

import allure
import pytest
from etcd3gw.client import Etcd3Client

from reports import evidence
from stackcheck.flannel.model import Lease, NetworkConfig, lease_ttls
from stackcheck.lab import Lab

pytestmark = allure.feature("data model")


@allure.id("flannel-config-parses")
def test_network_config_parses(flannel_config: NetworkConfig) -> None:
    evidence.attach_text("network config", str(flannel_config.raw))
    assert flannel_config.backend in ("vxlan", "host-gw", "udp"), (
        f"expected Backend.Type vxlan, host-gw or udp; saw {flannel_config.backend!r}"
    )
    assert flannel_config.network.prefixlen < flannel_config.subnet_len <= 30, (
        f"expected SubnetLen between /{flannel_config.network.prefixlen + 1} and /30 "
        f"for Network {flannel_config.network}; saw /{flannel_config.subnet_len}"
    )


@allure.id("flannel-one-lease-per-host")
def test_one_lease_per_flannel_host(lab: Lab, leases: list[Lease]) -> None:
    by_ip: dict[str, list[str]] = {}
    for lease in leases:
        by_ip.setdefault(lease.public_ip, []).append(str(lease.subnet))
    missing = [h.name for h in lab.hosts_with("flannel") if h.address not in by_ip]
    doubled = {ip: s for ip, s in by_ip.items() if len(s) > 1}
    assert not missing, f"expected a lease for every flannel host; none for {missing}"
    assert not doubled, f"expected one lease per host; several for {doubled}"


@allure.id("flannel-leases-disjoint-inside-network")
def test_leases_are_disjoint_and_inside_network(
    flannel_config: NetworkConfig, leases: list[Lease]
) -> None:
    outside = [str(x.subnet) for x in leases if not x.subnet.subnet_of(flannel_config.network)]
    assert not outside, f"expected every lease inside {flannel_config.network}; outside: {outside}"
    overlaps = [
        (a.key, b.key) for a, b in itertools.combinations(leases, 2) if a.subnet.overlaps(b.subnet)
    ]
    assert not overlaps, f"expected disjoint leases; these overlap: {overlaps}"
    wrong_len = [str(x.subnet) for x in leases if x.subnet.prefixlen != flannel_config.subnet_len]
    assert not wrong_len, f"expected /{flannel_config.subnet_len} leases; saw {wrong_len}"


@allure.id("flannel-lease-backend-data")
def test_leases_carry_their_backend_data(
    flannel_config: NetworkConfig, leases: list[Lease]
) -> None:
    wrong_type = {x.key: x.backend for x in leases if x.backend != flannel_config.backend}
    assert not wrong_type, f"expected BackendType {flannel_config.backend}; saw {wrong_type}"
    if flannel_config.backend == "vxlan":
        no_mac = [x.key for x in leases if not x.vtep_mac]
        assert not no_mac, f"expected BackendData.VtepMAC on every vxlan lease; none on {no_mac}"


@allure.id("flannel-no-stale-leases")
def test_no_stale_leases(lab: Lab, leases: list[Lease], etcd_client: Etcd3Client) -> None:
    known = {h.address for h in lab.hosts}
    stale = [x.key for x in leases if x.public_ip not in known]
    if stale:
        ttls = lease_ttls(etcd_client, lab.flannel.etcd_prefix)
        pytest.fail("leases of hosts not in the inventory: "
                    + ", ".join(f"{k} ({ttls.get(k, 'ttl ?')})" for k in stale))
