"""Small helpers over openstacksdk: names and tags, lookups, quotas, retries, safe messages."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from openstack import exceptions as os_exc

from stackcheck_provisioners.base import ProvisionerError

T = TypeVar("T")
log = logging.getLogger(__name__)

TAG = "stackcheck"
RUN_TAG_PREFIX = "stackcheck-run="
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")
TRANSIENT = frozenset({409, 500, 502, 503, 504})


def run_tags(run_id: str) -> list[str]:
    return [TAG, f"{RUN_TAG_PREFIX}{run_id}"]


def run_metadata(run_id: str) -> dict[str, str]:
    """Nova servers carry the tags as metadata (works on every microversion)."""
    return {TAG: "1", "stackcheck-run": run_id}


def resource_name(run_id: str, what: str) -> str:
    return f"sc-{run_id}-{what}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.match(run_id):
        raise ProvisionerError(f"openstack: run id {run_id!r} is not usable in resource names "
                               "and tags (letters, digits, '.', '_', '-'; at most 48)")
    return run_id


def short_error(exc: BaseException) -> str:
    """One line about an SDK error: status code and the server's message, no request dump."""
    if isinstance(exc, os_exc.HttpException):
        detail = exc.details or exc.message or ""
        code = f"HTTP {exc.status_code}: " if exc.status_code else ""
        text = f"{code}{detail}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:300]


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, os_exc.HttpException) and exc.status_code in TRANSIENT


def retry(call: Callable[[], T], *, attempts: int, interval: float,
          sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``call``, retrying 409 and 5xx errors up to ``attempts`` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except os_exc.HttpException as exc:
            if not is_transient(exc) or attempt == attempts:
                raise
            sleep(interval * attempt)
    raise AssertionError("unreachable")


def _find(finder: Callable[..., Any], name_or_id: str) -> Any:
    """The resource, or None when there is none (without the deprecated ignore_missing)."""
    try:
        return finder(name_or_id, ignore_missing=False)
    except os_exc.NotFoundException:
        return None


def find_image(conn: Any, name_or_id: str) -> Any:
    image = _find(conn.image.find_image, name_or_id)
    if image is None:
        raise ProvisionerError(f"image not found: {name_or_id!r} "
                               f"(project {project_label(conn)}; check 'openstack image list')")
    return image


def find_flavor(conn: Any, name_or_id: str) -> Any:
    flavor = _find(conn.compute.find_flavor, name_or_id)
    if flavor is None:
        raise ProvisionerError(f"flavor not found: {name_or_id!r} "
                               f"(project {project_label(conn)}; check 'openstack flavor list')")
    return flavor


def find_network(conn: Any, name_or_id: str, what: str) -> Any:
    network = _find(conn.network.find_network, name_or_id)
    if network is None:
        raise ProvisionerError(f"{what} network not found: {name_or_id!r} "
                               f"(project {project_label(conn)})")
    return network


def project_label(conn: Any) -> str:
    """The project's name from the token (its id when the token has no name)."""
    try:
        access = conn.session.auth.get_access(conn.session)
        return access.project_name or access.project_id or "?"
    except Exception:  # noqa: BLE001 - only used to word a message
        return "?"


@dataclass
class Need:
    what: str
    amount: int
    limit: int
    used: int

    @property
    def left(self) -> int:
        return self.limit - self.used

    @property
    def short(self) -> bool:
        return self.limit >= 0 and self.amount > self.left


def _net_usage(entry: Any) -> tuple[int, int]:
    entry = entry or {}
    return int(entry.get("limit", -1)), int(entry.get("used", 0)) + int(entry.get("reserved", 0))


def check_quotas(conn: Any, *, servers: int, vcpus: int, ram_mb: int, new_network: bool,
                 floating_ips: int) -> None:
    """Raise one clear line when the project cannot hold the lab; create nothing."""
    absolute = conn.compute.get_limits().absolute
    needs = [
        Need("instances", servers, absolute.instances, absolute.instances_used),
        Need("cores", servers * vcpus, absolute.total_cores, absolute.total_cores_used),
        Need("MB of RAM", servers * ram_mb, absolute.total_ram, absolute.total_ram_used),
    ]
    try:
        net = conn.network.get_quota(conn.current_project_id, details=True)
    except (os_exc.NotFoundException, os_exc.ForbiddenException) as exc:
        log.warning("openstack: network quotas not readable (%s); not checked", short_error(exc))
        net = None
    wanted = [] if net is None else [
        ("networks", net.networks, 1 if new_network else 0),
        ("subnets", net.subnets, 1 if new_network else 0),
        ("routers", net.routers, 1 if new_network else 0),
        # one per server, a router interface and a DHCP port on a new network
        ("ports", net.ports, servers + (2 if new_network else 0)),
        ("floating IPs", net.floating_ips, floating_ips),
        ("security groups", net.security_groups, 1),
    ]
    needs += [Need(what, amount, *_net_usage(entry)) for what, entry, amount in wanted if amount]
    short = [n for n in needs if n.short]
    if short:
        parts = ", ".join(f"need {n.amount} {n.what}, {max(n.left, 0)} left" for n in short)
        raise ProvisionerError(f"quota: {parts} in project {project_label(conn)}")
