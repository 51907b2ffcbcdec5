"""MachinesProvisioner: real systemd machines on this box, reached only through the inventory."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from filelock import FileLock
from pydantic import Field

from stackcheck.lab import Lab
from stackcheck_provisioners.base import (
    ProvisionConfig,
    Provisioner,
    ProvisionerError,
    ProvisionerOptions,
)
from stackcheck_provisioners.hostlab import state
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.hostlab.lifecycle import LabKind, create_lab, running
from stackcheck_provisioners.hostlab.proc import alive, signal_pids, wait_gone
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.hostlab.teardown import CREATE_LOCK, destroy_locked
from stackcheck_provisioners.machines import tree
from stackcheck_provisioners.machines.build import build

DEFAULT_NAME = "machines"
DEFAULT_SUBNET = "10.212.0.0/24"
#: supervisors wait 20 s for a power-off before they kill the machine
POWER_OFF_TIMEOUT = 25.0


class MachinesOptions(ProvisionerOptions):
    """``--option`` keys of the machines lab."""

    name: str = Field(DEFAULT_NAME, description="lab name: machines, links and state use it")
    subnet: str = Field(DEFAULT_SUBNET, description="private IPv4 subnet of the machines")
    docker: bool = Field(True, description="run docker.service in every machine")
    kubernetes: bool = Field(
        True, description="Kubernetes as systemd units in the machines on containerd "
        "(control plane on h1, kubelet and kube-proxy on every machine)")
    k8s_bin_dir: str | None = Field(
        None, description="use Kubernetes binaries from this folder instead of the cached build")
    flanneld: str | None = Field(
        None, description="a flanneld binary to run in the machines (else the lab's plumbing)")


def layout_for(config: ProvisionConfig) -> Layout:
    options = {"name": DEFAULT_NAME, "subnet": DEFAULT_SUBNET, **config.options}
    return Layout.from_options(Path(config.state_dir).resolve(), config.run_id, config.hosts,
                               options)


#: the lab recorded in a state folder is ready and running
healthy = running


def power_off(state_dir: Path, timeout: float = POWER_OFF_TIMEOUT) -> None:
    """Ask every supervisor to power its machine off and wait (bounded) until they are gone."""
    data = state.read(state_dir) or {}
    procs = [r for r in data.get("processes", {}).values() if alive(r.get("pid"), r.get("start"))]
    signal_pids([r["pid"] for r in procs], signal.SIGTERM)
    wait_gone(lambda: any(alive(r["pid"], r["start"]) for r in procs), timeout)


def destroy_state_dir(state_dir: Path | str, progress: Progress | None = None) -> list[str]:
    """Power the machines off, then remove everything recorded (also after a crash)."""
    sd = Path(state_dir)
    if state.read(sd) is None:
        return []
    progress = progress or Progress(f"machines lab in {sd}")
    created = bool((state.read(sd) or {}).get("created_state_dir"))
    with FileLock(str(sd / CREATE_LOCK), timeout=600):
        with progress.step("power the machines off"):
            power_off(sd)
        with progress.step("remove processes, namespaces, cgroups, sysroots"):
            problems = destroy_locked(sd, keep=(CREATE_LOCK,))
    if not problems:
        (sd / CREATE_LOCK).unlink(missing_ok=True)
        if created:
            shutil.rmtree(sd, ignore_errors=True)
    return problems


KIND = LabKind(name="machines", noun="machines", before_teardown=power_off)


class MachinesProvisioner(Provisioner):
    """Hosts are systemd-nspawn machines booted from their own ostree deployments."""

    name = "machines"
    options_model = MachinesOptions

    def create(self, config: ProvisionConfig) -> Lab:
        if os.geteuid() != 0:
            raise ProvisionerError("the machines provisioner needs root (namespaces, nspawn)")
        for exe, pkg in (("systemd-nspawn", "systemd-container"), ("ostree", "ostree"),
                         ("mmdebstrap", "mmdebstrap")):
            if shutil.which(exe) is None:
                raise ProvisionerError(f"{exe} is not installed (Debian package {pkg})")
        layout = layout_for(config)
        flanneld = config.options.get("flanneld")
        binary = Path(flanneld).expanduser().resolve() if flanneld else None
        if binary is not None and not (binary.is_file() and os.access(binary, os.X_OK)):
            raise ProvisionerError(f"option flanneld={flanneld}: not an executable file")
        progress = Progress(f"machines lab {layout.name}")
        machine_tree = tree.ensure(progress)
        wanted = {**layout.options(), "flanneld": str(binary) if binary else None}
        return create_lab(KIND, config, layout, wanted, progress,
                          lambda: build(layout, machine_tree, progress, flanneld=binary))

    def destroy(self, lab: Lab) -> None:
        if lab.state_dir is None:
            raise ProvisionerError("this lab has no state_dir: nothing to destroy")
        _close_ssh()
        progress = Progress(f"machines lab {lab.name}")
        problems = destroy_state_dir(lab.state_dir, progress)
        if problems:
            raise ProvisionerError(f"teardown left: {'; '.join(problems)}")
        progress.summary("destroyed")

    def abort(self, config: ProvisionConfig) -> None:
        """Remove whatever the state folder records (an interrupted create, or ``lab down``)."""
        _close_ssh()
        if not (Path(config.state_dir) / "state.json").exists():
            return
        problems = destroy_state_dir(Path(config.state_dir))
        if problems:
            raise ProvisionerError(f"teardown left: {'; '.join(problems)}")


def _close_ssh() -> None:
    from stackcheck.ssh import close_all

    close_all()
