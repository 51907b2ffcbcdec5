"""flannel's data model, wherever the lab keeps it (etcd, or the Kubernetes API): the network
config, one sound lease per host, leases that describe their hosts, no stale lease and, in
Kubernetes mode, one ready flanneld pod per node."""

import itertools
from collections import Counter

import allure
import pytest

from stackcheck.flannel.etcd_store import lease_ttls
from stackcheck.flannel.model import BACKENDS, Lease, NetworkConfig
from stackcheck.flannel.plumbing import VXLAN_DEVICE
from stackcheck.flannel.source import ETCD, KUBE, FlannelData
from stackcheck.lab import Lab
from stackcheck_reports import evidence

pytestmark = allure.feature("data model")


def _fleet_value(values: list) -> object | None:
    """The one value every host shares, else None."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


@allure.id("flannel-config-parses")
def test_network_config_parses(flannel: FlannelData, flannel_config: NetworkConfig,
                               leases: list[Lease]) -> None:
    """The config parses, names a backend and sane subnet sizes, and agrees with what the
    hosts run (a config that disagrees with every host's lease fails here, once)."""
    evidence.attach_text("flannel mode", flannel.summary)
    evidence.attach_text("network config", str(flannel_config.raw))
    assert flannel_config.backend in BACKENDS, (
        f"expected Backend.Type one of {', '.join(BACKENDS)}; saw {flannel_config.backend!r}"
    )
    if flannel_config.network is not None:
        assert flannel_config.network.prefixlen < flannel_config.subnet_len <= 30, (
            f"expected SubnetLen between /{flannel_config.network.prefixlen + 1} and /30 "
            f"for Network {flannel_config.network}; saw /{flannel_config.subnet_len}"
        )
    if flannel_config.ipv6_network is not None:
        assert flannel_config.ipv6_network.prefixlen < flannel_config.ipv6_subnet_len <= 126, (
            f"expected IPv6SubnetLen between /{flannel_config.ipv6_network.prefixlen + 1} and "
            f"/126 for IPv6Network {flannel_config.ipv6_network}; "
            f"saw /{flannel_config.ipv6_subnet_len}"
        )
    said, run = flannel_config.backend, _fleet_value([x.backend for x in leases])
    if run is not None and run != said:
        pytest.fail(f"the config says Backend {said!r}, but every host runs {run!r} (all "
                    f"{len(leases)} leases): the config was changed after flanneld started, "
                    "or is wrong; the per-host checks describe what the hosts run")
    vni = _fleet_value([x.vni for x in leases])
    if run == "vxlan" and isinstance(vni, int) and vni != flannel_config.vni:
        pytest.fail(f"the config says VNI {flannel_config.vni}, but every host runs VNI {vni} "
                    f"(BackendData of all {len(leases)} leases)")


@allure.id("flannel-one-lease-per-host")
def test_one_lease_per_flannel_host(lab: Lab, flannel: FlannelData, leases: list[Lease]) -> None:
    by_ip: dict[str, list[str]] = {}
    for lease in leases:
        by_ip.setdefault(lease.public_ip, []).append(lease.subnets or lease.key)
    missing = [h.name for h in lab.hosts_with("flannel") if h.address not in by_ip]
    doubled = {ip: s for ip, s in by_ip.items() if len(s) > 1}
    assert not missing, (f"expected a lease for every flannel host; none for {missing} "
                         f"({flannel.summary})")
    assert not doubled, f"expected one lease per host; several for {doubled}"


@allure.id("flannel-leases-disjoint-inside-network")
def test_leases_are_disjoint_and_inside_network(
    flannel: FlannelData, flannel_config: NetworkConfig, leases: list[Lease]
) -> None:
    assert not flannel.invalid, f"expected every lease to parse; {'; '.join(flannel.invalid)}"
    for family, network, length, subnet_of in (
        ("", flannel_config.network, flannel_config.subnet_len, lambda x: x.subnet),
        ("IPv6 ", flannel_config.ipv6_network, flannel_config.ipv6_subnet_len,
         lambda x: x.ipv6_subnet),
    ):
        if network is None:
            continue
        mine = [(x, subnet_of(x)) for x in leases]
        absent = [x.key for x, s in mine if s is None]
        assert not absent, f"expected an {family}subnet in every lease of {network}; " \
                           f"none in {absent}"
        outside = [str(s) for _, s in mine if not s.subnet_of(network)]
        assert not outside, f"expected every {family}lease inside {network}; outside: {outside}"
        overlaps = [(a.key, b.key) for (a, sa), (b, sb) in itertools.combinations(mine, 2)
                    if sa.overlaps(sb)]
        assert not overlaps, f"expected disjoint {family}leases; these overlap: {overlaps}"
        wrong_len = [str(s) for _, s in mine if s.prefixlen != length]
        assert not wrong_len, f"expected /{length} {family}leases; saw {wrong_len}"


@allure.id("flannel-lease-backend-data")
def test_leases_carry_their_backend_data(leases: list[Lease]) -> None:
    """Every lease carries the data its own backend needs; the hosts agree on a backend."""
    counts = Counter(x.backend for x in leases)
    if len(counts) > 1:
        common = counts.most_common(1)[0][0]
        odd = {x.key: x.backend for x in leases if x.backend != common}
        pytest.fail(f"expected every host on one backend ({common!r} on "
                    f"{counts[common]} hosts); these differ: {odd}")
    no_mac = [x.key for x in leases if x.backend == "vxlan" and not x.vtep_mac]
    assert not no_mac, f"expected BackendData.VtepMAC on every vxlan lease; none on {no_mac}"
    no_key = [x.key for x in leases if x.backend == "wireguard"
              and not x.backend_data.get("PublicKey")]
    assert not no_key, f"expected BackendData.PublicKey on every wireguard lease; none on {no_key}"


@allure.id("flannel-lease-matches-host")
def test_leases_describe_their_hosts(lab: Lab, leases: list[Lease], flannel: FlannelData,
                                     overlay_devices: dict[str, dict | None]) -> None:
    """What each host's lease announces is what the host has: vxlan's VtepMAC, VNI and
    PublicIP are flannel.1's MAC, id and local address (the devices of other backends are
    the per-host checks')."""
    by_ip = {h.address: h.name for h in lab.hosts_with("flannel")}
    problems, unread = [], []
    for lease in leases:
        name = by_ip.get(lease.public_ip)
        if name is None:
            continue  # a stale lease: the stale-lease check's finding
        devices = overlay_devices.get(name)
        if devices is None:
            unread.append(name)
            continue
        where = f"{name}: {lease.key}"
        if lease.backend == "vxlan":
            link = devices.get(VXLAN_DEVICE)
            if link is None:
                problems.append(f"{where} announces vxlan, but {name} has no {VXLAN_DEVICE}")
                continue
            data = (link.get("linkinfo") or {}).get("info_data") or {}
            seen = {"VtepMAC": (link.get("address") or "").lower(), "VNI": data.get("id"),
                    "PublicIP": data.get("local")}
            said = {"VtepMAC": lease.vtep_mac, "VNI": lease.vni, "PublicIP": lease.public_ip}
            wrong = [f"{k} {said[k]} but {VXLAN_DEVICE} has {seen[k]}" for k in said
                     if said[k] is not None and said[k] != seen[k]]
            if wrong:
                problems.append(f"{where} backend data says {', '.join(wrong)}")
    assert not problems, f"expected each lease ({flannel.mode}) to describe its host; " + (
        "; ".join(problems))
    if unread:
        pytest.skip(f"could not read the devices of {', '.join(unread)} (the preflight says why)")


@allure.id("flannel-no-stale-leases")
def test_no_stale_leases(request: pytest.FixtureRequest, lab: Lab, flannel: FlannelData,
                         leases: list[Lease]) -> None:
    if not leases:
        pytest.fail(f"no flannel lease was read ({flannel.summary}): nothing to compare "
                    "with the inventory")
    known = {h.address for h in lab.hosts}
    stale = [x for x in leases if x.public_ip not in known]
    if not stale:
        return
    if flannel.mode == KUBE:
        pytest.fail("flannel leases of nodes not in the inventory: " + ", ".join(
            f"{x.key} ({x.subnets}, public-ip {x.public_ip or 'none'})" for x in stale))
    ttls: dict[str, str] = {}
    if flannel.mode == ETCD:
        ttls = lease_ttls(request.getfixturevalue("etcd_client"), lab.flannel.etcd_prefix)
    pytest.fail("leases of hosts not in the inventory: "
                + ", ".join(f"{x.key} ({ttls.get(x.key, 'ttl ?')})" for x in stale))


@allure.id("flannel-daemonset-ready")
def test_daemonset_runs_on_every_node(request: pytest.FixtureRequest, lab: Lab,
                                      flannel: FlannelData) -> None:
    """Kubernetes mode: the flanneld DaemonSet has one ready pod on every flannel host."""
    if flannel.mode != KUBE:
        pytest.skip(f"flannel runs in {flannel.mode} mode: no DaemonSet to check")
    if not lab.flannel.daemonset:
        pytest.skip("the inventory says flanneld runs outside Kubernetes (flannel.daemonset "
                    f"is empty): {lab.environment.get('flannel', 'no DaemonSet')}")
    from stackcheck.flannel.source import daemonset

    state = daemonset(request.getfixturevalue("kube"), lab.flannel.daemonset)
    assert state is not None, (
        f"expected the DaemonSet {lab.flannel.daemonset} in kube-flannel or kube-system; "
        "there is none"
    )
    evidence.attach_text("flannel DaemonSet", f"{state.where}: {state.ready} of {state.desired} "
                         f"ready; ready on {sorted(state.ready_on)}; not ready {state.not_ready}")
    hosts = [h.name for h in lab.hosts_with("flannel")]
    missing = {h: state.not_ready.get(h, "no pod") for h in hosts if h not in state.ready_on}
    assert not missing, f"expected a ready pod of {state.where} on every node; {missing}"
