"""MachinesProvisioner: real systemd machines on this box, reached only through the inventory."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import cast

from pydantic import Field, field_validator

from stackcheck.lab import Lab
from stackcheck_provisioners.base import ProvisionConfig, ProvisionerError
from stackcheck_provisioners.hostlab import state
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.hostlab.lifecycle import (
    HostLabProvisioner,
    LabKind,
    create_lab,
    running,
)
from stackcheck_provisioners.hostlab.options import HostLabOptions
from stackcheck_provisioners.hostlab.proc import alive, signal_pids, wait_gone
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.machines import tree
from stackcheck_provisioners.machines.build import build

DEFAULT_NAME = "machines"
DEFAULT_SUBNET = "10.212.0.0/24"
#: supervisors wait 20 s for a power-off before they kill the machine
POWER_OFF_TIMEOUT = 25.0


class MachinesOptions(HostLabOptions):
    """``--option`` keys of the machines lab."""

    name: str = Field(DEFAULT_NAME, description="lab name: machines, links and state use it")
    subnet: str = Field(DEFAULT_SUBNET, description="private IPv4 subnet of the machines")
    docker: bool = Field(True, description="run docker.service in every machine")
    kubernetes: bool = Field(
        True, description="Kubernetes as systemd units in the machines on containerd "
        "(control plane on h1, kubelet and kube-proxy on every machine)")
    flanneld: str | None = Field(
        None, description="a flanneld binary to run in the machines (else the lab's plumbing)")

    @field_validator("flanneld")
    @classmethod
    def _an_executable(cls, flanneld: str | None) -> str | None:
        if flanneld is None:
            return None
        binary = Path(flanneld).expanduser().resolve()
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            raise ValueError("not an executable file")
        return str(binary)


def layout_for(config: ProvisionConfig, options: MachinesOptions | None = None) -> Layout:
    """The plan of the machines lab ``config`` asks for (``options``: its options, validated)."""
    if options is None:
        options = cast(MachinesOptions, MachinesProvisioner.parse_options(config.options))
    return Layout.from_options(Path(config.state_dir), config.run_id, config.hosts, options)


#: the lab recorded in a state folder is ready and running
healthy = running


def power_off(state_dir: Path, timeout: float = POWER_OFF_TIMEOUT) -> None:
    """Ask every supervisor to power its machine off and wait (bounded) until they are gone."""
    data = state.read(state_dir) or {}
    procs = [r for r in data.get("processes", {}).values() if alive(r.get("pid"), r.get("start"))]
    signal_pids([r["pid"] for r in procs], signal.SIGTERM)
    wait_gone(lambda: any(alive(r["pid"], r["start"]) for r in procs), timeout)


KIND = LabKind(name="machines", noun="machines", before_teardown=power_off,
               before_teardown_step="power the machines off")
#: power the machines off, then remove everything recorded (also after a crash); the problems
destroy_state_dir = KIND.destroy


class MachinesProvisioner(HostLabProvisioner):
    """Hosts are systemd-nspawn machines booted from their own ostree deployments."""

    name = "machines"
    kind = KIND
    options_model = MachinesOptions

    def create(self, config: ProvisionConfig) -> Lab:
        if os.geteuid() != 0:
            raise ProvisionerError("the machines provisioner needs root (namespaces, nspawn)")
        for exe, pkg in (("systemd-nspawn", "systemd-container"), ("ostree", "ostree"),
                         ("mmdebstrap", "mmdebstrap")):
            if shutil.which(exe) is None:
                raise ProvisionerError(f"{exe} is not installed (Debian package {pkg})")
        options = cast(MachinesOptions, self.parse_options(config.options))
        layout = layout_for(config, options)
        binary = Path(options.flanneld) if options.flanneld else None
        progress = Progress(f"machines lab {layout.name}")
        machine_tree = tree.ensure(progress)
        wanted = {**layout.options(), "flanneld": options.flanneld}
        return create_lab(KIND, options, layout, wanted, progress,
                          lambda: build(layout, machine_tree, progress, flanneld=binary))
