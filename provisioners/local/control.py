"""Start, stop, restart and query a host's services, in-process; also a CLI for use over SSH.

Services: ``sshd`` (every host), ``etcd`` (etcd hosts), ``docker`` (when available) or
``containerd`` (option ``runtime=containerd``),
``flannel`` (only with a real flanneld), and with Kubernetes ``kube-apiserver``,
``kube-controller-manager``, ``kube-scheduler`` (first host), ``kubelet``, ``kube-proxy``.
A service runs inside its host's namespaces (``nsenter -t <holder>``) in its own cgroup,
started with the same command as at bring-up. Stop = SIGTERM to the recorded PID, SIGKILL
after a bound (then, except for sshd, whatever is left in the service's cgroup; for docker
and containerd also the pods' containers). Safe from several processes at once (per-service
file lock, state updates under the state lock).

CLI: ``python -m stackcheck_provisioners.local --state-dir DIR --host h1 stop etcd``
(actions: start, stop, restart, is_active, status, journal, reboot); exit status 0 =
done/active, 3 = inactive, 1 = failed. ``status`` prints the service's state the way
``systemctl show`` does (``LoadState``, ``ActiveState``, ``StateChangeTimestamp``; a service
the host does not run is ``LoadState=not-found``), ``journal`` the last lines of its log.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from filelock import FileLock

from stackcheck_provisioners.base import ProvisionerError, ServiceResult
from stackcheck_provisioners.hostlab import (
    cgroups,
    containerd,
    docker,
    etcd,
    k8s_services,
    kubelet,
    ostree,
    state,
)
from stackcheck_provisioners.hostlab.layout import HostPlan, Layout
from stackcheck_provisioners.hostlab.proc import (
    alive,
    log_tail,
    signal_pids,
    spawn,
    stop,
    wait_gone,
)
from stackcheck_provisioners.local import holder, sshd, unitstate

ACTIONS = ("start", "stop", "restart", "is_active", "status", "journal")
#: lines ``journal`` prints
JOURNAL_LINES = 5
START_ORDER = ("sshd", "etcd", "flannel", "docker", "containerd", *k8s_services.SERVICES)
RUNTIMES = ("docker", "containerd")
#: services whose leftovers (children) are killed with them; sshd keeps its sessions
KILL_GROUP = {"etcd", "flannel", *RUNTIMES, *k8s_services.SERVICES}


def layout_of(state_dir: Path, data: state.State | None = None) -> tuple[Layout, state.State]:
    """The layout and state of the lab recorded in ``state_dir``."""
    data = data if data is not None else state.read(state_dir)
    if not data:
        raise ProvisionerError(f"no local lab recorded in {state_dir}")
    layout = Layout.recorded(Path(data["state_dir"]), data["run_id"], data["config"])
    return layout, data


def services_of(data: state.State, host: HostPlan) -> list[str]:
    """The services this host runs, in start order."""
    out = ["sshd"]
    if host.etcd:
        out.append("etcd")
    if data.get("flannel") == "flanneld":
        out.append("flannel")
    if data.get("docker_available", True):
        out.append("docker")
    if data.get("containerd_available"):
        out.append("containerd")
    out += k8s_services.services_of(data, host)
    return [s for s in START_ORDER if s in out]


def command(layout: Layout, data: state.State, host: HostPlan, service: str) -> list[str]:
    """The daemon's argv (without the nsenter prefix)."""
    if service == "sshd":
        return sshd.argv(layout, host)
    if service == "etcd":
        return etcd.argv(layout, host)
    if service == "docker":
        bip = data.get("hosts", {}).get(host.name, {}).get("bip")
        return docker.argv(layout, host, bip)
    if service == "containerd":
        return containerd.argv(layout, host)
    if service == "flannel":  # a real flanneld only: its module loads the inventory model
        from stackcheck_provisioners.hostlab import overlay

        return overlay.argv(layout, host)
    if service in k8s_services.SERVICES:
        return k8s_services.argv(layout, data, host, service)
    raise ProvisionerError(f"unknown service {service!r}")


def ready(layout: Layout, host: HostPlan, service: str) -> bool:
    if service in k8s_services.SERVICES:
        return k8s_services.ready(layout, host, service)
    if service == "flannel":
        from stackcheck_provisioners.hostlab import overlay

        return overlay.ready(layout, host)
    mod = {"sshd": sshd, "etcd": etcd, "docker": docker, "containerd": containerd}[service]
    return mod.ready(layout, host)


def _lock(layout: Layout, host: str, service: str) -> FileLock:
    d = layout.state_dir / "locks"
    d.mkdir(exist_ok=True)
    return FileLock(str(d / f"{host}-{service}.lock"), timeout=120)


def _record(data: state.State, host: str, service: str) -> dict | None:
    return data.get("processes", {}).get(f"{host}/{service}")


def is_active(layout: Layout, host: str, service: str) -> bool:
    rec = _record(state.read(layout.state_dir) or {}, host, service)
    return bool(rec) and alive(rec["pid"], rec["start"])


def launch(layout: Layout, data: state.State, host: HostPlan, service: str) -> int:
    """Spawn the service (no wait); record and return its PID."""
    argv = holder.enter(holder.holder_pid(data, host.name)) + command(layout, data, host, service)
    cg = cgroups.service_cgroup(layout.name, host.name, service)
    # the host's own temp dir: dockerd's containerd dumps its stacks there when dockerd
    # restarts it (SIGUSR1), which otherwise litters the machine's /tmp
    env = {**layout.env, "TMPDIR": "/run/tmp"}
    pid, start_ = spawn(argv, log=host.dir / "logs" / f"{service}.log", env=env, cgroup=cg)
    state.set_process(layout.state_dir, f"{host.name}/{service}",
                      {"host": host.name, "service": service, "pid": pid, "start": start_})
    _changed(layout, host.name, service)
    return pid


def _changed(layout: Layout, host: str, service: str) -> None:
    """Note when a service last started or stopped (``status``'s StateChangeTimestamp)."""
    with state.edit(layout.state_dir) as st:
        st.setdefault("changed", {})[f"{host}/{service}"] = time.time()


def unit_status(layout: Layout, data: state.State, host: HostPlan, service: str) -> str:
    """The service's state in ``systemctl show``'s key=value format (see ``unitstate``)."""
    if service not in services_of(data, host):
        return f"Id={service}\nLoadState=not-found\nActiveState=inactive\n"
    return unitstate.show(layout.state_dir, host.name, service)


def wait_ready(layout: Layout, host: HostPlan, service: str, timeout: float) -> None:
    """Wait until the service answers; raise with its log tail if it exits or times out."""
    deadline = time.monotonic() + timeout
    while not ready(layout, host, service):
        if not is_active(layout, host.name, service):
            tail = log_tail(host.dir / "logs" / f"{service}.log")
            raise ProvisionerError(f"{host.name}: {service} exited: {tail}")
        if time.monotonic() > deadline:
            tail = log_tail(host.dir / "logs" / f"{service}.log", 2)
            raise ProvisionerError(f"{host.name}: {service} not ready in {timeout:g}s: {tail}")
        time.sleep(0.05)


def _kill_group(layout: Layout, host: str, service: str) -> None:
    names = [service, "containers"] if service == "docker" else [service]
    root = cgroups.tracking_root()
    if root is None:
        return
    dirs = [root / cgroups.lab_group(layout.name) / host / n for n in names]
    signal_pids(set().union(*(cgroups.pids_in(d) for d in dirs)), signal.SIGKILL)
    wait_gone(lambda: any(cgroups.pids_in(d) for d in dirs), 5)
    if service in RUNTIMES:  # pods' containers die with their runtime here (shims killed too)
        kubelet.kill_pods(state.read(layout.state_dir) or {}, host)
    if service == "docker":
        # a killed dockerd leaves its pidfile, and its zombie may outlive our wait (PID 1
        # reaps late): the next dockerd would refuse to start
        (layout.host(host).run_dir / "docker.pid").unlink(missing_ok=True)


def _stop(layout: Layout, host: HostPlan, service: str, timeout: float,
          whole_group: bool = False) -> None:
    rec = _record(state.read(layout.state_dir) or {}, host.name, service)
    if rec and not stop(rec["pid"], rec["start"], timeout=timeout):
        raise ProvisionerError(f"{host.name}: {service} (pid {rec['pid']}) did not stop")
    if whole_group or service in KILL_GROUP:
        _kill_group(layout, host.name, service)
    state.set_process(layout.state_dir, f"{host.name}/{service}", None)
    _changed(layout, host.name, service)


def _last_lines(path: Path, count: int, chunk: int = 65536) -> list[str]:
    """The last ``count`` lines of a log file (reads only its end: logs grow large)."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - chunk))
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-count:]


def act(state_dir: Path, host_name: str, service: str, action: str,
        timeout: float = 60) -> ServiceResult:
    """Do ``action`` on ``service`` of ``host_name``; never raises for service failures."""
    desc = f"local: {action} {service} on {host_name}"
    try:
        layout, data = layout_of(Path(state_dir))
        host = layout.host(host_name)
        if action == "status":
            return ServiceResult(host_name, desc, 0, unit_status(layout, data, host, service),
                                 "")
        if service not in services_of(data, host):
            return ServiceResult(host_name, desc, 1, "", f"{host_name} runs no {service}")
        if action == "is_active":
            active = is_active(layout, host_name, service)
            return ServiceResult(host_name, desc, 0 if active else 3,
                                 "active\n" if active else "inactive\n", "")
        if action == "journal":
            lines = _last_lines(host.dir / "logs" / f"{service}.log", JOURNAL_LINES)
            return ServiceResult(host_name, desc, 0, "".join(f"{x}\n" for x in lines), "")
        if action not in ACTIONS:
            raise ProvisionerError(f"unknown action {action!r}; expected one of {ACTIONS}")
        with _lock(layout, host_name, service):
            if action in ("stop", "restart"):
                _stop(layout, host, service, timeout=min(timeout, 15))
            if action in ("start", "restart") and not is_active(layout, host_name, service):
                launch(layout, state.read(layout.state_dir) or data, host, service)
            if action in ("start", "restart"):
                wait_ready(layout, host, service, timeout)
        return ServiceResult(host_name, desc, 0, f"{service} {action} done\n", "")
    except (ProvisionerError, OSError) as exc:
        return ServiceResult(host_name, desc, 1, "", str(exc))


def reboot(state_dir: Path, host_name: str, timeout: float = 120) -> None:
    """Stop every service of the host, boot the default ostree deployment, start them again.

    The host gets a new boot id while its services are down (nothing reads a half-written one).
    """
    layout, data = layout_of(Path(state_dir))
    host = layout.host(host_name)
    services = services_of(data, host)
    _terminate_sessions(layout, host)
    for service in reversed(services):
        with _lock(layout, host_name, service):
            _stop(layout, host, service, timeout=10, whole_group=True)
    if (ostree.sysroot(host) / "ostree").is_dir():
        ostree.make_default_booted(host)
    holder.new_boot_id(host)
    for service in services:
        with _lock(layout, host_name, service):
            if not is_active(layout, host_name, service):
                launch(layout, state.read(layout.state_dir) or data, host, service)
    for service in services:
        wait_ready(layout, host, service, timeout)


def _terminate_sessions(layout: Layout, host: HostPlan, grace: float = 3) -> None:
    """SIGTERM the host's SSH sessions and wait a little, as a shutdown does before SIGKILL.

    Their shells run EXIT traps: a SIGKILLed root shell in the middle of root's .bashrc
    (``pyenv rehash``) leaves a stale lock that stalls every later shell on the machine.
    """
    root = cgroups.tracking_root()
    if root is None:
        return
    group = root / cgroups.lab_group(layout.name) / host.name / "sshd"
    signal_pids(cgroups.pids_in(group), signal.SIGTERM)
    wait_gone(lambda: bool(cgroups.pids_in(group)), grace)


def _detach(state_dir: Path, host: str) -> None:
    """Leave the SSH session's cgroup and session, so a reboot that kills sshd spares us."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.setsid()
    with contextlib.suppress(OSError, ProvisionerError):
        layout, _ = layout_of(state_dir)
        cg = cgroups.service_cgroup(layout.name, host, "control")
        if cg is not None:
            (cg / "cgroup.procs").write_text(str(os.getpid()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stackcheck_provisioners.local",
                                     description="control services of a local stackcheck lab")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--host", required=True)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("action", choices=[*ACTIONS, "reboot"])
    parser.add_argument("service", nargs="?")
    args = parser.parse_args(argv)
    if args.action == "reboot":
        # survive the end of the SSH session that asked for it
        _detach(args.state_dir, args.host)
        try:
            reboot(args.state_dir, args.host, args.timeout)
        except ProvisionerError as exc:
            with contextlib.suppress(OSError):
                print(f"reboot {args.host}: {exc}", file=sys.stderr)
            return 1
        return 0
    if not args.service:
        parser.error("a service is needed (sshd, etcd, docker, flannel)")
    result = act(args.state_dir, args.host, args.service, args.action, args.timeout)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr + ("\n" if result.stderr else ""))
    return result.exit_status


if __name__ == "__main__":
    sys.exit(main())
