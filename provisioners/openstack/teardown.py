"""Deleting resources: exactly what a run recorded, or leaks of earlier runs by tag and age."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from openstack import exceptions as os_exc

from stackcheck_provisioners.base import ProvisionerError

from .cloud import RUN_TAG_PREFIX, TAG, resource_name, retry, short_error
from .state import DELETE_ORDER, Resource, RunState

log = logging.getLogger(__name__)


@dataclass
class Deleter:
    """Deletes one resource at a time; transient errors (409, 5xx) are retried."""

    conn: Any
    attempts: int = 5
    interval: float = 2.0
    server_timeout: float = 300.0
    sleep: Callable[[float], None] = time.sleep

    def delete(self, res: Resource) -> None:
        net, compute = self.conn.network, self.conn.compute
        calls: dict[str, Callable[[], Any]] = {
            "floating_ip": lambda: net.delete_ip(res.id, ignore_missing=True),
            "server": lambda: compute.delete_server(res.id, ignore_missing=True),
            "router_interface": lambda: self._remove_interface(res),
            "router": lambda: net.delete_router(res.id, ignore_missing=True),
            "subnet": lambda: net.delete_subnet(res.id, ignore_missing=True),
            "network": lambda: net.delete_network(res.id, ignore_missing=True),
            "security_group": lambda: net.delete_security_group(res.id, ignore_missing=True),
            "keypair": lambda: compute.delete_keypair(res.id, ignore_missing=True),
        }
        log.info("deleting %s %s (%s)", res.kind, res.name, res.id)
        retry(calls[res.kind], attempts=self.attempts, interval=self.interval, sleep=self.sleep)

    def _remove_interface(self, res: Resource) -> None:
        router = res.extra["router_id"]
        try:
            if "port_id" in res.extra:
                # positional: the keyword names changed across openstacksdk releases
                self.conn.network.remove_interface_from_router(router, None,
                                                               res.extra["port_id"])
            else:
                self.conn.network.remove_interface_from_router(router, res.id)
        except os_exc.NotFoundException:
            pass  # router or interface already gone

    def wait_servers_gone(self, ids: list[str]) -> None:
        started, waited = time.monotonic(), 0.0  # bounded in real and in slept time
        pending = list(ids)
        while pending:
            pending = [i for i in pending if self._server_exists(i)]
            if not pending:
                return
            if max(waited, time.monotonic() - started) >= self.server_timeout:
                raise ProvisionerError(f"openstack: server(s) {', '.join(pending)} still there "
                                       f"{self.server_timeout:g}s after delete")
            self.sleep(self.interval)
            waited += self.interval

    def _server_exists(self, server_id: str) -> bool:
        try:
            server = self.conn.compute.get_server(server_id)
        except os_exc.NotFoundException:
            return False
        return (server.status or "").upper() != "DELETED"


def destroy_recorded(deleter: Deleter, state: RunState) -> None:
    """Delete every resource in ``state`` (and only those), in dependency order.

    Deleted resources leave the state file at once; whatever could not be deleted stays in
    it, and a ProvisionerError lists it.
    """
    failures: list[str] = []
    for kind in DELETE_ORDER:
        batch = [r for r in state.in_delete_order() if r.kind == kind]
        done: list[Resource] = []
        for res in batch:
            try:
                deleter.delete(res)
                done.append(res)
            except Exception as exc:  # noqa: BLE001 - keep going, report all at the end
                failures.append(f"{res.kind} {res.name or res.id}: {short_error(exc)}")
        if kind == "server" and done:
            try:
                deleter.wait_servers_gone([r.id for r in done])
            except ProvisionerError as exc:
                failures.append(str(exc))
                continue
        for res in done:
            state.remove(res)
    if failures:
        raise ProvisionerError(
            f"openstack: {len(state.resources)} resource(s) of run {state.run_id} not deleted "
            f"(still listed in {state.path}): " + "; ".join(failures)
        )


# --- leaks of earlier runs ----------------------------------------------------------------


def _created(obj: Any) -> datetime | None:
    raw = getattr(obj, "created_at", None)
    if not raw:
        return None
    value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _run_of_tags(tags: list[str] | None) -> str:
    return next((t.removeprefix(RUN_TAG_PREFIX) for t in tags or []
                 if t.startswith(RUN_TAG_PREFIX)), "?")


def find_leaks(conn: Any, older_than: timedelta, now: datetime | None = None) -> list[Resource]:
    """Resources tagged ``stackcheck`` and created before ``now - older_than``."""
    cutoff = (now or datetime.now(UTC)) - older_than
    found: list[Resource] = []

    def old(obj: Any) -> bool:
        created = _created(obj)
        return created is not None and created < cutoff

    net = conn.network
    tagged = [
        ("floating_ip", net.ips(tags=TAG)),
        ("router", net.routers(tags=TAG)),
        ("subnet", net.subnets(tags=TAG)),
        ("network", net.networks(tags=TAG)),
        ("security_group", net.security_groups(tags=TAG)),
    ]
    for server in conn.compute.servers(details=True):
        metadata = server.metadata or {}
        if TAG in metadata and old(server):
            found.append(Resource("server", server.id, server.name,
                                  {"run": metadata.get("stackcheck-run", "?")}))
    for kind, items in tagged:
        for obj in items:
            if not old(obj):
                continue
            name = getattr(obj, "name", None) or getattr(obj, "floating_ip_address", "") or ""
            run = _run_of_tags(obj.tags)
            found.append(Resource(kind, obj.id, name, {"run": run}))
            if kind == "router":
                for port in net.ports(device_id=obj.id):
                    if (port.device_owner or "").startswith("network:router_interface"):
                        found.append(Resource("router_interface", port.id, f"{name} interface",
                                              {"router_id": obj.id, "port_id": port.id,
                                               "run": run}))
    # keypairs have no tags: only the keypair named after a leaked run, if old enough too
    for run in sorted({r.extra.get("run", "?") for r in found} - {"?"}):
        try:
            keypair = conn.compute.get_keypair(resource_name(run, "key"))
        except os_exc.NotFoundException:
            continue
        if old(keypair):
            found.append(Resource("keypair", keypair.name, keypair.name, {"run": run}))
    return sorted(found, key=lambda r: DELETE_ORDER.index(r.kind))


def describe(res: Resource) -> str:
    run = res.extra.get("run")
    return f"{res.kind} {res.name or '-'} ({res.id})" + (f" run {run}" if run else "")


def cleanup_leaks(deleter: Deleter, older_than: timedelta, dry_run: bool,
                  now: datetime | None = None) -> list[str]:
    """Describe (dry run) or delete the leaks; return one line per resource."""
    leaks = find_leaks(deleter.conn, older_than, now)
    lines = [describe(r) for r in leaks]
    if dry_run:
        return lines
    failures: list[str] = []
    for kind in DELETE_ORDER:
        batch = [r for r in leaks if r.kind == kind]
        for res in batch:
            try:
                deleter.delete(res)
            except Exception as exc:  # noqa: BLE001 - report all at the end
                failures.append(f"{describe(res)}: {short_error(exc)}")
        if kind == "server" and batch:
            deleter.wait_servers_gone([r.id for r in batch])
    if failures:
        raise ProvisionerError(f"cleanup: {len(failures)} leaked resource(s) not deleted: "
                               + "; ".join(failures))
    return lines
