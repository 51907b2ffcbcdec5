"""Docker: the daemon answers, and its bridge sits inside the host's flannel lease.

Docker's own checks run on every host that runs Docker: its runtime is Docker, or its service
manager has Docker set to run beside a kubelet on containerd or CRI-O (``docker.service``
enabled, running or failed). Where Docker is not run (the unit absent, masked, or disabled and
inactive; a ``docker`` role on a containerd host is not an error) they skip saying so; the
runtime suite checks that host's runtime.
"""

import ipaddress
import shlex

import allure
import pytest

from stackcheck.errors import cut_line
from stackcheck.flannel.model import ip_json, read_subnet_env
from stackcheck.lab import Host, Lab
from stackcheck.runtime import docker_checks_skip
from stackcheck.services import explain, unit_state

pytestmark = [pytest.mark.role("docker"), allure.feature("daemon")]


def _docker_only(lab: Lab, lab_host: Host, runtime_of) -> None:
    """Skip, with the host's own word, where the host does not run Docker."""
    runtime = runtime_of(lab_host)
    if runtime.kind in ("docker", "unknown"):
        return
    why = docker_checks_skip(lab_host.name, runtime, unit_state(lab, lab_host, "docker"))
    if why:
        pytest.skip(why)


@allure.id("docker-daemon-answers")
@pytest.mark.owns("runtime")  # reports the runtime's own health: never blocked by it
def test_daemon_answers(lab: Lab, lab_host: Host, host, runtime_of) -> None:
    _docker_only(lab, lab_host, runtime_of)
    result = host.run("docker info --format '{{.ServerVersion}}'")
    answered = result.rc == 0 and bool(result.stdout.strip())
    if not answered:  # the host's own word: the unit's state and its last log line
        why = cut_line(result.stderr.strip().splitlines()[-1] if result.stderr.strip()
                       else f"exit {result.rc}, no output")
        pytest.fail(explain(lab, lab_host, "docker", f"does not answer (docker info: {why})"),
                    pytrace=False)


@allure.id("docker-bridge-in-flannel-lease")
def test_bridge_is_inside_the_flannel_lease(lab: Lab, lab_host: Host, host, lease_of,
                                            runtime_of) -> None:
    if not lab_host.has_role("flannel"):
        pytest.skip(f"{lab_host.name} has no flannel role")
    _docker_only(lab, lab_host, runtime_of)
    lease = lease_of(lab_host)
    links = [link for link in ip_json(host, "addr show") if link.get("ifname") == "docker0"]
    assert links, f"{lab_host.name}: expected Docker's bridge docker0; found none"
    bridge = links[0]
    addresses = [ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
                 for a in bridge.get("addr_info", []) if a.get("family") == "inet"]
    inside = [a for a in addresses if a.ip in lease.subnet]
    assert inside, (
        f"{lab_host.name}: {bridge['ifname']} has {[str(a) for a in addresses]}, expected an "
        f"address inside the host's lease {lease.subnet}"
    )
    flannel_mtu = read_subnet_env(host).get("FLANNEL_MTU")
    fmt = shlex.quote('{{index .Options "com.docker.network.driver.mtu"}}')
    inspected = host.run(f"docker network inspect bridge --format {fmt}")
    if inspected.rc != 0:  # a stopped daemon has no MTU to give: say so, not "default"
        why = cut_line(inspected.stderr.strip().splitlines()[-1] if inspected.stderr.strip()
                       else f"exit {inspected.rc}, no output")
        pytest.fail(explain(lab, lab_host, "docker", "cannot say its bridge's MTU (docker "
                            f"network inspect: {why})"), pytrace=False)
    docker_mtu = inspected.stdout.strip()
    assert flannel_mtu and docker_mtu == flannel_mtu, (
        f"{lab_host.name}: Docker gives containers MTU {docker_mtu or 'default (1500)'}, "
        f"expected the flannel MTU {flannel_mtu} (dockerd --mtu)"
    )
