"""flannel's part of the lab picture (:mod:`stackcheck.picture`): each host's lease (from
etcd, or the Kubernetes API in ``--kube-subnet-mgr`` mode) and its overlay device, read on
the host over SSH."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from stackcheck.flannel import source
from stackcheck.flannel.model import WIREGUARD_DEVICE
from stackcheck.lab import Host, Lab
from stackcheck.picture.model import BAD, INFO, OK, UNKNOWN, HostView, LayerView, Line, Probing
from stackcheck.picture.probe import each_host

ROLE = "flannel"


@dataclass
class Overlay:
    """A host's flannel lease and overlay device."""

    subnet: str | None = None  # from the host's lease
    device: str | None = None  # e.g. flannel.1
    device_ok: bool | None = None  # None: not looked at
    detail: str = ""  # "flannel.1: vxlan id 1, mtu 1450, up" or what is wrong


def device_name(data: source.FlannelData) -> str | None:
    """The overlay device flannel's backend makes on each host (None: no such device)."""
    if data.config is None:
        return None
    return {"vxlan": f"flannel.{data.config.vni}", "udp": "flannel0",
            "wireguard": WIREGUARD_DEVICE}.get(data.config.backend)


def read_data(lab: Lab) -> source.FlannelData | None:
    """flannel's config and leases wherever the lab keeps them: etcd (any member that
    answers), else the Kubernetes API."""
    data = None
    if lab.etcd is not None and lab.flannel.mode != "kube":
        from stackcheck.etcd import client_for

        last: Exception | None = None
        for endpoint in lab.etcd.endpoints:
            try:
                data = source.from_etcd(client_for(lab.etcd, endpoint, timeout=3.0),
                                        lab.flannel.etcd_prefix)
                break
            except Exception as exc:  # noqa: BLE001 - try the next member
                last = exc
        else:
            if lab.kubernetes is None:
                raise RuntimeError(f"no etcd member answered: {last}")
    if data is None and lab.kubernetes is not None and lab.flannel.mode != "etcd":
        from stackcheck.kubernetes import connect

        data = source.from_kube(connect(str(lab.kubernetes.kubeconfig)))
    return data


def read_device(lab: Lab, host: Host, device: str) -> Overlay:
    """``ip -d -j link show DEVICE`` on ``host``: its kind, VNI, MTU and whether it is up."""
    from stackcheck.ssh import host_connection

    done = host_connection(lab, host).run(f"ip -d -j link show {shlex.quote(device)}")
    if done.rc != 0:
        return Overlay(device=device, device_ok=False, detail=f"{device} missing")
    link = (json.loads(done.stdout) or [{}])[0]
    info = (link.get("linkinfo") or {}).get("info_data") or {}
    up = "UP" in (link.get("flags") or [])
    kind = (link.get("linkinfo") or {}).get("info_kind", "?")
    vni = f" id {info['id']}" if "id" in info else ""
    detail = f"{device}: {kind}{vni}, mtu {link.get('mtu', '?')}, {'up' if up else 'DOWN'}"
    return Overlay(device=device, device_ok=up, detail=detail)


class FlannelPicture:
    """The lab picture's flannel part (:class:`stackcheck.picture.model.LayerPicture`)."""

    def probe(self, lab: Lab, probing: Probing) -> dict[str, Overlay] | None:
        """host name -> its lease and device (the devices read on every host at once)."""
        hosts = lab.hosts_with(ROLE)
        if not hosts or (lab.etcd is None and lab.kubernetes is None):
            return None
        data = read_data(lab)
        if data is None:
            return None
        device = device_name(data)
        subnets = {x.public_ip: x.subnets for x in data.leases}
        out = {h.name: Overlay(subnet=subnets.get(h.address) or None, device=device)
               for h in hosts}
        if device is not None:
            read = each_host(hosts, lambda h: read_device(lab, h, device), device, probing)
            for name, found in read.items():
                found.subnet = out[name].subnet
                out[name] = found
        return out

    def view(self, hosts: Sequence[HostView], found: dict[str, Overlay] | None) -> LayerView:
        part = LayerView()
        if found is None and not any(ROLE in h.roles for h in hosts):
            return part
        for host in hosts:
            overlay = (found or {}).get(host.name)
            if ROLE not in host.roles:
                part.hosts[host.name] = [Line("flannel: no flannel role", UNKNOWN)]
            elif overlay is None:
                part.hosts[host.name] = [Line("flannel: not read", UNKNOWN)]
            else:
                part.hosts[host.name] = _host_lines(overlay)
                part.problems += [f"{host.name}: {p}" for p in _problems(overlay)]
        return part


def _host_lines(overlay: Overlay) -> list[Line]:
    lease = (Line(f"flannel: {overlay.subnet}", INFO) if overlay.subnet
             else Line("flannel: NO LEASE", BAD, strong=True))
    if overlay.device_ok is None:
        device = Line(f"{overlay.device or 'device'}: not read", UNKNOWN, detail=True)
    else:
        device = Line(overlay.detail, OK if overlay.device_ok else BAD,
                      strong=not overlay.device_ok, detail=True)
    return [lease, device]


def _problems(overlay: Overlay) -> list[str]:
    out = [] if overlay.subnet else ["flannel holds no lease for it"]
    if overlay.device_ok is False:
        out.append(f"overlay {overlay.detail}")
    return out


PICTURE = FlannelPicture()
