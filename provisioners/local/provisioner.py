"""LocalProvisioner: a real small lab on this machine, reachable like a remote one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from stackcheck.lab import Host, Lab
from stackcheck_provisioners.base import ProvisionConfig, ProvisionerError, ServiceResult
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.hostlab.lifecycle import (
    HostLabProvisioner,
    LabKind,
    create_lab,
    running,
)
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.local import control, packages
from stackcheck_provisioners.local.build import build
from stackcheck_provisioners.local.options import LocalOptions

#: the lab recorded in a state folder is ready and running
healthy = running

KIND = LabKind(name="local", noun="hosts")
#: tear down the lab recorded in a state folder (also after a crash); the problems left
destroy_state_dir = KIND.destroy


def layout_for(config: ProvisionConfig, options: LocalOptions | None = None) -> Layout:
    """The plan of the local lab ``config`` asks for (``options``: its options, validated)."""
    if options is None:
        options = cast(LocalOptions, LocalProvisioner.parse_options(config.options))
    return Layout.from_options(Path(config.state_dir), config.run_id, config.hosts, options,
                               flannel=options.flannel, runtime=options.runtime)


class LocalProvisioner(HostLabProvisioner):
    """Hosts are network namespaces on one machine running real sshd, etcd, dockerd, ostree."""

    name = "local"
    kind = KIND
    options_model = LocalOptions
    simulated_reboot = (
        "local lab: the provisioner simulates the reboot (stops the host's services, records the "
        "default deployment as booted, gives the host a new boot id, starts the services again); "
        "no kernel restarts"
    )

    def create(self, config: ProvisionConfig) -> Lab:
        if os.geteuid() != 0:
            raise ProvisionerError("the local provisioner needs root (namespaces, mounts)")
        options = cast(LocalOptions, self.parse_options(config.options))
        layout = layout_for(config, options)
        packages.ensure()
        progress = Progress(f"local lab {layout.name}")
        return create_lab(KIND, options, layout, layout.options(), progress,
                          lambda: build(layout, progress))

    def status(self, lab: Lab) -> dict[str, dict[str, str]]:
        layout, data = control.layout_of(self._sd(lab))
        return {
            h.name: {
                s: "active" if control.is_active(layout, h.name, s) else "inactive"
                for s in control.services_of(data, h)
            }
            for h in layout.hosts
        }

    def service(
        self, lab: Lab, host: Host, service: str, action: str, timeout: float = 60
    ) -> ServiceResult:
        result = control.act(self._sd(lab), host.name, service, action, timeout)
        if service == "sshd" and action in ("stop", "restart"):
            _close_ssh(lab, host)
        return result

    def inactive(self, lab: Lab, host: Host, services: list[str], timeout: float = 0.0,
                 interval: float = 1.0) -> list[str]:
        """In-process (the lab's own records, no SSH), waiting up to ``timeout``."""
        import contextlib

        from stackcheck.waits import WaitTimeout, wait_for

        layout, data = control.layout_of(self._sd(lab))
        runs = set(control.services_of(data, layout.host(host.name)))
        left = list(services)

        def all_active() -> bool:
            left[:] = [s for s in services
                       if s not in runs or not control.is_active(layout, host.name, s)]
            return not left

        if not timeout:
            all_active()
            return left
        with contextlib.suppress(WaitTimeout):
            wait_for(all_active, timeout=timeout, interval=interval, retry_errors=False,
                     what=f"{host.name}'s services {', '.join(services)} to be active",
                     describe=lambda: f"inactive: {', '.join(left)}")
        return left

    def reboot(self, lab: Lab, host: Host, timeout: float = 600) -> None:
        _close_ssh(lab, host)
        control.reboot(self._sd(lab), host.name, timeout)
        _close_ssh(lab, host)

    @staticmethod
    def _sd(lab: Lab) -> Path:
        if lab.state_dir is None:
            raise ProvisionerError("this lab has no state_dir")
        return Path(lab.state_dir)


def _close_ssh(lab: Lab, host: Host) -> None:
    from stackcheck import ssh

    ssh.close(lab, host)
