"""The Lab model of a local lab: its hosts, roles and the commands that control its services."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from stackcheck.lab import FlannelConfig, Host, Lab, ServiceControl
from stackcheck_provisioners.hostlab import access, ostree, overlay, state
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.hostlab.proc import REPO_ROOT
from stackcheck_provisioners.local import control, kubernetes, unitstate

UNITSTATE = Path(unitstate.__file__)
#: s the reboot command's session waits to be ended by the reboot (bounded if it is not)
REBOOT_SESSION_S = 20


def control_templates(layout: Layout, host: str | None) -> ServiceControl:
    """Templates that run the control CLI on a host (over SSH) for the existing provisioner."""
    target = shlex.quote(host) if host else '"$(hostname)"'
    base = (f"env PYTHONPATH={shlex.quote(str(REPO_ROOT))} {shlex.quote(sys.executable)} "
            f"-m stackcheck_provisioners.local --state-dir {shlex.quote(str(layout.state_dir))} "
            f"--host {target}")
    units = {"etcd": "etcd", "docker": "docker", "containerd": "containerd", "sshd": "sshd",
             "flannel": "flannel",
             **{s: s for s in kubernetes.SERVICES}}
    unitstate_cli = f"{shlex.quote(sys.executable)} -I {shlex.quote(str(UNITSTATE))}"
    return ServiceControl(
        stop=f"{base} stop {{unit}}",
        start=f"{base} start {{unit}}",
        restart=f"{base} restart {{unit}}",
        # plain programs, fast to start: the preflight asks them about every silent service,
        # the atomic cycle polls is_active after each reboot (the control CLI: ~0.7 s of CPU)
        is_active=(f"{unitstate_cli} --is-active {shlex.quote(str(layout.state_dir))} "
                   f"{target} {{unit}}"),
        status=f"{unitstate_cli} {shlex.quote(str(layout.state_dir))} {target} {{unit}}",
        journal=(f"tail -n {control.JOURNAL_LINES} {shlex.quote(str(layout.state_dir))}"
                 f"/hosts/{target}/logs/{{unit}}.log"),
        # like a real reboot, the session ends when the host goes down (the control CLI
        # ends every SSH session first): whoever waits for the new boot id starts asking
        # then, not over new SSH connections while the host still runs its old boot
        reboot=f"setsid -f {base} reboot >/dev/null 2>&1 </dev/null; sleep {REBOOT_SESSION_S}",
        logs=f"tail -n {{lines}} {shlex.quote(str(layout.state_dir / 'hosts'))}/{target}/logs/"
             "{unit}.log",
        units=units,
    )


def make_lab(layout: Layout, data: state.State, environment: dict[str, str]) -> Lab:
    """The Lab model of a built lab."""
    # the docker role = the host runs containers (whichever runtime: checks detect it)
    docker_ok = data.get("docker_available", True) or data.get("containerd_available", False)
    ostree_ok = data.get("ostree_available", True)
    k8s = data.get("kubernetes") or {}  # Kubernetes roles only for what really runs
    hosts = []
    for h in layout.hosts:
        roles = ["etcd"] if h.etcd else []
        if k8s.get("bin_dir") and k8s.get("control_plane") == h.name:
            roles.append("master")
        if k8s.get("bin_dir") and k8s.get("kubelets"):
            roles.append("node")
        if ostree_ok:
            roles.append("atomic")
        if docker_ok:
            roles.append("docker")
        roles.append("flannel")
        extra = {}
        if ostree_ok and "ostree_sysroot" in Host.model_fields:
            extra["ostree_sysroot"] = str(ostree.sysroot(h))
        hosts.append(Host(name=h.name, address=h.address, roles=roles,
                          service_control=control_templates(layout, h.name), **extra))
    return Lab(
        **access.lab_fields(layout, "local"),
        hosts=hosts,
        kubernetes=kubernetes.access(layout, data),
        # the lab's own plumbing: no flanneld, so no DaemonSet in either mode
        flannel=FlannelConfig(etcd_prefix=overlay.PREFIX, mode=layout.flannel, daemonset=""),
        service_control=control_templates(layout, None),
        environment=environment,
    )
