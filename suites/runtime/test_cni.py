"""The runtime's CNI bridge sits inside the host's flannel lease, and pods get flannel's MTU."""

import ipaddress

import allure
import pytest

from stackcheck.flannel.model import ip_json, read_subnet_env
from stackcheck.lab import Host, Lab
from stackcheck.runtime.detect import UNKNOWN, read_cni
from stackcheck_reports import evidence

#: with the other checks that use the data-path pods (made once per run, on one worker); the
#: bridge check asks for them on Kubernetes nodes only, so the plugin cannot see it
pytestmark = [allure.feature("pod network"), pytest.mark.xdist_group("datapath")]


@pytest.mark.role("flannel")
@allure.id("runtime-cni-bridge-in-flannel-lease")
def test_cni_bridge_is_inside_the_flannel_lease(request: pytest.FixtureRequest, lab: Lab,
                                                lab_host: Host, host, runtime_of,
                                                lease_of) -> None:
    runtime = runtime_of(lab_host)
    if runtime.kind in ("docker", UNKNOWN):
        pytest.skip(f"{lab_host.name} runs {runtime.kind}: no CNI bridge (Docker's docker0 is "
                    "checked by docker-bridge-in-flannel-lease)")
    if lab.kubernetes is not None and lab_host.has_role("node"):
        request.getfixturevalue("pods")  # the bridge appears with the node's first pod
    lease = lease_of(lab_host)
    try:
        network = read_cni(host, runtime)
    except ValueError as exc:
        pytest.fail(f"{lab_host.name}: {exc}")
    assert network is not None, (
        f"{lab_host.name}: expected a CNI config in {runtime.cni_conf_dir} (where {runtime.kind} "
        "reads it); found none, so pods get no network")
    evidence.attach_text("CNI network", "\n".join([
        f"file: {network.file}", f"name: {network.name}", f"plugins: {network.types}",
        f"bridge: {network.bridge}", f"mtu: {network.mtu}", f"subnet: {network.subnet}",
        f"flannel plugin (subnet.env): {network.flannel}"]))
    if network.bridge is None:
        pytest.skip(f"{lab_host.name}: {network.file} uses {network.types[0]}, not a bridge")
    flannel_mtu = read_subnet_env(host).get("FLANNEL_MTU")
    assert flannel_mtu, f"{lab_host.name}: /run/flannel/subnet.env has no FLANNEL_MTU"
    if network.subnet is not None:
        assert network.subnet.subnet_of(lease.subnet), (
            f"{lab_host.name}: {network.file} gives pods {network.subnet}, expected inside the "
            f"host's lease {lease.subnet}")
    if network.mtu is not None or not network.flannel:
        assert str(network.mtu) == flannel_mtu, (
            f"{lab_host.name}: {network.file} gives pods MTU "
            f"{network.mtu or 'default (1500)'}, expected the flannel MTU {flannel_mtu}")
    links = [link for link in ip_json(host, "addr show") if link.get("ifname") == network.bridge]
    assert links, (f"{lab_host.name}: expected the CNI bridge {network.bridge} (named by "
                   f"{network.file}); no such link")
    bridge = links[0]
    addresses = [ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
                 for a in bridge.get("addr_info", []) if a.get("family") == "inet"]
    assert any(a.ip in lease.subnet for a in addresses), (
        f"{lab_host.name}: {network.bridge} has {[str(a) for a in addresses]}, expected an "
        f"address inside the host's lease {lease.subnet}")
    assert str(bridge.get("mtu")) == flannel_mtu, (
        f"{lab_host.name}: {network.bridge} has MTU {bridge.get('mtu')}, expected the flannel "
        f"MTU {flannel_mtu}")


@pytest.mark.role("flannel")
@allure.id("runtime-pods-get-flannel-mtu")
def test_pods_get_the_flannel_mtu(lab_host: Host, host, pods) -> None:
    mine = [p for p in pods if p.host is not None and p.host.name == lab_host.name]
    if not mine:
        pytest.skip(f"{lab_host.name} runs no data-path pod")
    flannel_mtu = read_subnet_env(host).get("FLANNEL_MTU")
    assert flannel_mtu, f"{lab_host.name}: /run/flannel/subnet.env has no FLANNEL_MTU"
    seen = mine[0].run("cat /sys/class/net/eth0/mtu").strip()
    assert seen == flannel_mtu, (
        f"{lab_host.name}: pod {mine[0].name} has eth0 MTU {seen!r}, expected the flannel MTU "
        f"{flannel_mtu} ({mine[0].kind})")
