"""LocalProvisioner: a real small lab on this machine, reachable like a remote one."""

from __future__ import annotations

import os
from pathlib import Path

from stackcheck.lab import Host, Lab
from stackcheck_provisioners.base import (
    ProvisionConfig,
    Provisioner,
    ProvisionerError,
    ServiceResult,
)
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.hostlab.lifecycle import LabKind, create_lab, running
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.hostlab.teardown import destroy_state_dir
from stackcheck_provisioners.local import control, packages
from stackcheck_provisioners.local.build import build
from stackcheck_provisioners.local.options import LocalOptions

#: the lab recorded in a state folder is ready and running
healthy = running


KIND = LabKind(name="local", noun="hosts")


class LocalProvisioner(Provisioner):
    """Hosts are network namespaces on one machine running real sshd, etcd, dockerd, ostree."""

    name = "local"
    options_model = LocalOptions
    simulated_reboot = (
        "local lab: the provisioner simulates the reboot (stops the host's services, records the "
        "default deployment as booted, gives the host a new boot id, starts the services again); "
        "no kernel restarts"
    )

    def down(self, state_dir: Path, recorded: Lab | None) -> None:
        """Tear down from ``state.json`` alone, inventory or not (crash-safe)."""
        self.abort(ProvisionConfig(run_id="down", state_dir=Path(state_dir)))

    def create(self, config: ProvisionConfig) -> Lab:
        if os.geteuid() != 0:
            raise ProvisionerError("the local provisioner needs root (namespaces, mounts)")
        sd = Path(config.state_dir).resolve()
        layout = Layout.from_options(sd, config.run_id, config.hosts, dict(config.options))
        packages.ensure()
        progress = Progress(f"local lab {layout.name}")
        return create_lab(KIND, config, layout, layout.options(), progress,
                          lambda: build(layout, progress))

    def destroy(self, lab: Lab) -> None:
        if lab.state_dir is None:
            raise ProvisionerError("this lab has no state_dir: nothing to destroy")
        _close_ssh(lab)
        progress = Progress(f"local lab {lab.name}")
        problems = destroy_state_dir(lab.state_dir)
        if problems:
            raise ProvisionerError(f"teardown left: {'; '.join(problems)}")
        progress.summary("destroyed")

    def abort(self, config: ProvisionConfig) -> None:
        """Remove whatever the state folder records (an interrupted create, or ``lab down``)."""
        if not (Path(config.state_dir) / "state.json").exists():
            return
        problems = destroy_state_dir(Path(config.state_dir))
        if problems:
            raise ProvisionerError(f"teardown left: {'; '.join(problems)}")

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


def _close_ssh(lab: Lab, host: Host | None = None) -> None:
    from stackcheck import ssh

    for h in [host] if host else lab.hosts:
        ssh.close(lab, h)
