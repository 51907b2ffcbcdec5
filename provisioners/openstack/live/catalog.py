"""Keystone catalog, lab project and base resources of the live control plane (openstacksdk)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import configs as c

SERVICE_TYPES = {"glance": "image", "placement": "placement", "nova": "compute",
                 "neutron": "network"}
FLAVOR, IMAGE, EXTERNAL = "sc.small", "sc-fake-image", "public"
LAB_PROJECT = "lab"


def admin(pw: dict[str, str]) -> Any:
    import openstack
    return openstack.connect(auth_url=f"{c.url('keystone')}/v3", username="admin",
                             password=pw["admin"], project_name="admin",
                             user_domain_name="Default", project_domain_name="Default",
                             region_name=c.REGION, identity_api_version="3")


def register(pw: dict[str, str]) -> None:
    """Service project, one user per service (admin role), services and endpoints."""
    conn = admin(pw)
    ident = conn.identity
    service_project = (ident.find_project("service")
                       or ident.create_project(name="service", domain_id="default"))
    admin_role = ident.find_role("admin")
    for name, kind in SERVICE_TYPES.items():
        user = (ident.find_user(name)
                or ident.create_user(name=name, password=pw[name], domain_id="default"))
        ident.assign_project_role_to_user(service_project, user, admin_role)
        service = next(iter(ident.services(type=kind)), None) or ident.create_service(
            name=name, type=kind)
        url = c.url(name) + ("/v2.1" if name == "nova" else "")
        have = {e.interface for e in ident.endpoints(service_id=service.id)}
        for interface in ("public", "internal", "admin"):
            if interface not in have:
                ident.create_endpoint(service_id=service.id, interface=interface, url=url,
                                      region_id=c.REGION)
    lab = (ident.find_project(LAB_PROJECT)
           or ident.create_project(name=LAB_PROJECT, domain_id="default"))
    user = (ident.find_user("lab")
            or ident.create_user(name="lab", password=pw["lab"], domain_id="default"))
    ident.assign_project_role_to_user(lab, user, ident.find_role("member"))


def resources(pw: dict[str, str]) -> None:
    """A flavor, a tiny image, the flat external network with its pool in sc-os-net."""
    conn = admin(pw)
    if conn.compute.find_flavor(FLAVOR) is None:
        conn.compute.create_flavor(name=FLAVOR, vcpus=1, ram=512, disk=1, is_public=True)
    if conn.image.find_image(IMAGE) is None:
        conn.image.create_image(name=IMAGE, data=b"\0" * 1024 * 1024, disk_format="raw",
                                container_format="bare", visibility="public")
    net = conn.network.find_network(EXTERNAL)
    if net is None:
        net = conn.network.create_network(name=EXTERNAL, is_router_external=True,
                                          provider_network_type="flat",
                                          provider_physical_network="extnet")
    if not list(conn.network.subnets(network_id=net.id)):
        conn.network.create_subnet(
            network_id=net.id, name=f"{EXTERNAL}-subnet", ip_version=4,
            cidr=c.EXTERNAL_CIDR, enable_dhcp=False, gateway_ip=None,
            allocation_pools=[{"start": c.EXTERNAL_POOL[0], "end": c.EXTERNAL_POOL[1]}])


def _fresh(stamp: str | None, since: datetime) -> bool:
    """A heartbeat (naive UTC, 'T' or ' ' separated) at or after ``since``."""
    return bool(stamp) and datetime.fromisoformat(str(stamp).replace(" ", "T")) >= since


def compute_ready(pw: dict[str, str], since: datetime) -> str | None:
    """None when nova-compute and the agent have reported since ``since`` (naive UTC).

    Records of an earlier bring-up still look alive for a minute; the scheduler drops a
    compute service without a recent heartbeat ("No valid host"), so only fresh ones count.
    """
    try:
        conn = admin(pw)
        hypervisors = list(conn.compute.hypervisors())
        services = list(conn.compute.services(binary="nova-compute", host=c.COMPUTE_HOST))
        agents = [a for a in conn.network.agents() if a.host == c.COMPUTE_HOST]
    except Exception as exc:  # noqa: BLE001 - reported as what the wait saw
        return f"API error: {str(exc)[:200]}"
    if not hypervisors:
        return "no hypervisor registered yet"
    if not any(s.state == "up" and _fresh(s.updated_at, since) for s in services):
        return f"no fresh nova-compute heartbeat from {c.COMPUTE_HOST} yet"
    if not any(a.is_alive and _fresh(a.last_heartbeat_at, since) for a in agents):
        return f"no fresh linuxbridge agent heartbeat from {c.COMPUTE_HOST} yet"
    return None
