"""The ``openstack`` provisioner: build a lab on an OpenStack cloud, tear it down exactly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as os_exc
from pydantic import Field

from stackcheck.lab import EtcdAccess, Host, Lab, SSHAccess, write_inventory
from stackcheck_provisioners.base import (
    ProvisionConfig,
    Provisioner,
    ProvisionerError,
    ProvisionerOptions,
)

from . import sshkeys
from .build import Builder, BuiltHost, Waits
from .cloud import check_quotas, check_run_id, find_flavor, find_image, find_network, short_error
from .spec import LabSpec, load_spec
from .state import STATE_FILE, RunState
from .teardown import Deleter, cleanup_leaks, destroy_recorded

log = logging.getLogger(__name__)

Connect = Callable[[str], Any]


def connect(cloud: str) -> Any:
    """A Connection to a cloud of clouds.yaml (credentials stay inside openstacksdk)."""
    import openstack
    from openstack.config import exceptions as config_exc

    try:
        return openstack.connect(cloud=cloud)
    except config_exc.OpenStackConfigException as exc:
        raise ProvisionerError(f"openstack: cloud {cloud!r}: {short_error(exc)}") from None


def cleanup(conn: Any, older_than: timedelta, dry_run: bool,
            deleter: Deleter | None = None) -> list[str]:
    """Find (dry run) or delete leaked resources of earlier runs by tag and age."""
    return cleanup_leaks(deleter or Deleter(conn), older_than, dry_run)


class OpenStackOptions(ProvisionerOptions):
    """``--option`` keys of the openstack provisioner."""

    spec: str | None = Field(None, description="the lab spec YAML (required)")
    ssh_timeout: float | None = Field(None, gt=0, description="seconds to wait for SSH")
    active_timeout: float | None = Field(None, gt=0,
                                         description="seconds to wait for servers ACTIVE")


class OpenStackProvisioner(Provisioner):
    """Servers, network and access for a lab spec (``--option spec=FILE``) on OpenStack."""

    name = "openstack"
    options_model = OpenStackOptions

    def __init__(self, connect: Connect = connect, probe: sshkeys.Probe = sshkeys.tcp_probe,
                 keyscan: sshkeys.Keyscan = sshkeys.paramiko_keyscan,
                 waits: Waits | None = None, delete_attempts: int = 5) -> None:
        self.connect = connect
        self.probe = probe
        self.keyscan = keyscan
        self.waits = waits or Waits()
        self.delete_attempts = delete_attempts

    # --- create ---------------------------------------------------------------------------

    def create(self, config: ProvisionConfig) -> Lab:
        run_id = check_run_id(config.run_id)
        options = self.parse_options(config.options)
        assert isinstance(options, OpenStackOptions)
        if options.spec is None:
            raise ProvisionerError("the 'openstack' provisioner needs a lab spec: "
                                   "pass --option spec=FILE")
        spec = load_spec(options.spec)
        waits = replace(self.waits, **{
            key: seconds for key in ("ssh_timeout", "active_timeout")
            if (seconds := getattr(options, key)) is not None})
        hosts = [BuiltHost(h) for h in spec.host_list(config.hosts)]
        conn = self.connect(spec.cloud)
        try:
            image = find_image(conn, spec.image)
            flavor = find_flavor(conn, spec.flavor)
            external = (find_network(conn, spec.network.external, "external")
                        if spec.network.external else None)
            existing = (find_network(conn, spec.network.existing, "lab")
                        if spec.network.existing else None)
            check_quotas(conn, servers=len(hosts), vcpus=flavor.vcpus, ram_mb=flavor.ram,
                         new_network=existing is None,
                         floating_ips=len(hosts) if spec.floating_ips else 0)
        except (os_exc.SDKException, ks_exc.ClientException) as exc:
            raise ProvisionerError(f"openstack: checking the cloud failed: {short_error(exc)}") \
                from None
        state = self._fresh_state(config.state_dir, spec.cloud, run_id)
        builder = Builder(conn, spec, state, waits)
        try:
            return self._build(builder, config, hosts, image, flavor, external, existing)
        except Exception as exc:
            if options.keep_on_failure:
                raise self._kept(state, builder.step, exc) from exc
            raise self._rolled_back(conn, state, builder.step, exc) from exc

    @staticmethod
    def _fresh_state(state_dir: Path, cloud: str, run_id: str) -> RunState:
        """A new state file; refuse to overwrite one that still lists resources."""
        previous = RunState.load(state_dir)
        if previous is not None and previous.resources:
            raise ProvisionerError(
                f"openstack: {previous.path} still lists {len(previous.resources)} resource(s) "
                f"of run {previous.run_id}; tear that lab down first (stackcheck lab down)")
        state = RunState(state_dir / STATE_FILE, cloud, run_id)
        state.save()
        return state

    def _build(self, builder: Builder, config: ProvisionConfig, hosts: list[BuiltHost],
               image: Any, flavor: Any, external: Any | None, existing: Any | None) -> Lab:
        spec, state_dir = builder.spec, config.state_dir
        builder.plan_addresses(hosts, own_network=existing is None)
        key_path = state_dir / f"id_{spec.key_type}"
        key_name = builder.keypair(sshkeys.generate_keypair(key_path, spec.key_type))
        network_id = existing.id if existing is not None else builder.network(external)[0]
        group_id = builder.security_group()
        builder.servers(hosts, image=image, flavor=flavor, key_name=key_name,
                        network_id=network_id, group_id=group_id)
        builder.wait_active(hosts)
        if spec.floating_ips:
            builder.floating_ips(hosts, external)
        builder.wait_ssh(hosts, self.probe)
        known_hosts = sshkeys.write_known_hosts(state_dir / "known_hosts",
                                                builder.host_keys(hosts, self.keyscan))
        lab = self._lab(spec, config, hosts, key_path, known_hosts)
        write_inventory(lab, state_dir / "inventory.yaml")
        log.info("openstack lab %s ready: %d host(s)", lab.name, len(hosts))
        return lab

    @staticmethod
    def _lab(spec: LabSpec, config: ProvisionConfig, hosts: list[BuiltHost], key_path: Path,
             known_hosts: Path) -> Lab:
        etcd = [h.address for h in hosts if "etcd" in h.spec.roles]
        return Lab(
            name=spec.name or f"sc-{config.run_id}", provisioner="openstack",
            run_id=config.run_id, owned=True, state_dir=config.state_dir,
            ssh=SSHAccess(user=spec.ssh_user, identity_file=key_path, known_hosts=known_hosts),
            hosts=[Host(name=h.spec.name, address=h.address, roles=h.spec.roles) for h in hosts],
            etcd=EtcdAccess(endpoints=[f"http://{a}:2379" for a in etcd]) if etcd else None,
            environment={"cloud": spec.cloud, "image": spec.image, "flavor": spec.flavor},
        )

    @staticmethod
    def _kept(state: RunState, step: str, exc: BaseException) -> ProvisionerError:
        why = str(exc) if isinstance(exc, ProvisionerError) else f"{step} failed: " \
            f"{short_error(exc)}"
        return ProvisionerError(f"{why}; kept the {len(state.resources)} resource(s) recorded "
                                f"in {state.path} (keep_on_failure): 'stackcheck lab down' "
                                "deletes them")

    def _rolled_back(self, conn: Any, state: RunState, step: str,
                     exc: BaseException) -> ProvisionerError:
        made = len(state.resources)
        own = isinstance(exc, ProvisionerError)  # already says what failed
        why = str(exc) if own else short_error(exc)
        log.warning("openstack: %s failed (%s); deleting %d resource(s)", step, why, made)
        try:
            self._destroy_state(conn, state)
        except ProvisionerError as cleanup_exc:
            what = why if own else f"openstack: {step} failed: {why}"
            return ProvisionerError(f"{what}; rollback incomplete: {cleanup_exc}")
        what = why if own else f"openstack: {step} failed: {why}"
        return ProvisionerError(f"{what}; deleted the {made} resource(s) created so far")

    # --- teardown -------------------------------------------------------------------------

    def _destroy_state(self, conn: Any, state: RunState) -> None:
        deleter = Deleter(conn, attempts=self.delete_attempts, interval=self.waits.interval,
                          server_timeout=self.waits.active_timeout, sleep=self.waits.sleep)
        destroy_recorded(deleter, state)
        state.path.unlink(missing_ok=True)

    def _destroy_dir(self, state_dir: Path | None) -> None:
        state = RunState.load(state_dir) if state_dir is not None else None
        if state is None:
            log.info("openstack: no %s in %s, nothing to delete", STATE_FILE, state_dir)
            return
        self._destroy_state(self.connect(state.cloud), state)

    def destroy(self, lab: Lab) -> None:
        """Delete exactly the resources recorded in the lab's state file."""
        self._destroy_dir(lab.state_dir)

    def abort(self, config: ProvisionConfig) -> None:
        """Delete whatever an interrupted create() recorded."""
        self._destroy_dir(config.state_dir)
