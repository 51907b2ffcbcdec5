"""The lab picture of a real broken lab: each layer's part (etcd, the container runtime,
flannel) drawn from a running 3-host local lab, then with h2's etcd member stopped and h3's
flannel.1 down: red on those hosts' cards and in the problems, the healthy host never
blamed. The faults are reverted whatever the outcome (the routes and neighbours flannel.1
loses when it goes down included).
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from labs import local_lab

from stackcheck.lab import Lab
from stackcheck.picture import Snapshot, gather, render
from stackcheck.picture.model import BAD, INFO, OK
from stackcheck.ssh import host_connection
from stackcheck.waits import wait_for
from stackcheck_provisioners import get_provisioner

LAB_NAME = "hw2pic"
SUBNET = "10.242.9.0/24"
SVG = "{http://www.w3.org/2000/svg}"

pytestmark = [
    pytest.mark.lab,
    pytest.mark.xdist_group("picture-lab"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with local_lab(tmp_path_factory.mktemp("hw2pic") / "lab", "picture-lab", name=LAB_NAME,
                   subnet=SUBNET, kubernetes="false") as built:
        yield built


def sh(lab: Lab, host: str, command: str) -> str:
    result = host_connection(lab, lab.host(host)).run(command)
    assert result.rc == 0, f"{host}: {command}: {result.stderr}"
    return result.stdout


def plumbing(lab: Lab) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """h3's routes, neighbours and forwarding entries on flannel.1 (sorted)."""
    routes = sorted(x.strip() for x in sh(lab, "h3", "ip route show dev flannel.1").splitlines())
    neighbours = sorted((x["dst"], x["lladdr"])
                        for x in json.loads(sh(lab, "h3", "ip -j neigh show dev flannel.1"))
                        if "lladdr" in x)
    fdb = sorted(x.strip() for x in sh(lab, "h3", "bridge fdb show dev flannel.1").splitlines())
    return routes, neighbours, fdb


def snapshot(lab: Lab) -> Snapshot:
    started = time.monotonic()
    snap = gather(lab, status=get_provisioner("local").status)
    print(f"gather: {time.monotonic() - started:.2f}s, parts {list(snap.parts)}")
    return snap


def shown(text: ET.Element) -> str:
    """What a ``<text>`` shows (its ``<title>`` is a tooltip)."""
    return (text.text or "") + "".join(child.tail or "" for child in text)


def card_of(root: ET.Element, text: str) -> str:
    """The host whose card holds the drawn line ``text``."""
    [line] = [t for t in root.iter(f"{SVG}text") if shown(t).startswith(text)]
    x, y = float(line.get("x")), float(line.get("y"))
    for card in root.iter(f"{SVG}rect"):
        if "host" in card.get("class", "").split():
            left, top = float(card.get("x")), float(card.get("y"))
            if left <= x <= left + float(card.get("width")) and \
                    top <= y <= top + float(card.get("height")):
                names = [shown(t) for t in root.iter(f"{SVG}text")
                         if t.get("font-size") == "15" and float(t.get("x")) == left + 12
                         and float(t.get("y")) == top + 24]
                return names[0]
    raise AssertionError(f"{text!r} is on no host's card")


def test_a_healthy_lab_is_drawn_green(lab: Lab) -> None:
    snap = snapshot(lab)
    assert snap.problems() == [] and snap.notes == [], snap.problems() + snap.notes
    assert list(snap.parts) == ["etcd", "runtime", "flannel"]  # no Kubernetes in this lab
    states = {line.state for part in snap.parts.values() for lines in part.hosts.values()
              for line in lines}
    assert states <= {OK, INFO}, states
    assert "every part drawn is healthy" in render(snap)


def test_a_stopped_member_and_a_downed_device_are_drawn_on_their_hosts(lab: Lab) -> None:
    provisioner = get_provisioner("local")
    before = plumbing(lab)
    assert before[0], "h3: flannel.1 has no routes to its peers before the fault"
    try:
        assert provisioner.service(lab, lab.host("h2"), "etcd", "stop", timeout=20).ok
        sh(lab, "h3", "ip link set flannel.1 down")
        snap = snapshot(lab)
        problems = snap.problems()
        assert any(p.startswith("h2: etcd member does not answer (") for p in problems), problems
        assert "h3: overlay flannel.1: vxlan id 1, mtu 1450, DOWN" in problems, problems
        assert "h2: etcd inactive" in problems
        assert not [p for p in problems if p.startswith("h1")], problems  # never blamed
        assert snap.parts["etcd"].hosts["h2"][0].state == BAD
        assert snap.parts["flannel"].hosts["h3"][1].state == BAD
        assert not [x for part in snap.parts.values() for x in part.hosts["h1"] if x.state == BAD]
        root = ET.fromstring(render(snap))
        assert card_of(root, "etcd: DOWN") == "h2"
        assert card_of(root, "flannel.1: vxlan id 1, mtu 1450, DOWN") == "h3"
        assert [r.get("class") for r in root.iter(f"{SVG}rect")
                if "host" in r.get("class", "").split()] == [
            "host healthy", "host failed", "host failed"]
    finally:
        sh(lab, "h3", "ip link set flannel.1 up")
        routes, neighbours, _ = before
        for route in routes:  # a link that went down lost its routes and neighbours
            sh(lab, "h3", f"ip route replace {route} dev flannel.1")
        for address, mac in neighbours:
            sh(lab, "h3", f"ip neigh replace {address} lladdr {mac} dev flannel.1 nud permanent")
        assert provisioner.service(lab, lab.host("h2"), "etcd", "start", timeout=30).ok
    assert plumbing(lab) == before  # restored as it was found
    seen: list[str] = []

    def healthy() -> bool:
        seen[:] = snapshot(lab).problems()
        return not seen

    wait_for(healthy, timeout=30, interval=1, what="the picture to show a healthy lab again",
             describe=lambda: "; ".join(seen))
