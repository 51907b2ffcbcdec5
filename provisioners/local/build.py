"""Bring-up of a local lab, step by step, recording everything in the state file first."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from provisioners.base import ProvisionerError
from provisioners.local import (
    containerd,
    control,
    docker,
    etcd,
    holder,
    kubernetes,
    network,
    ostree,
    overlay,
    overlay_kube,
    pki,
    sshd,
    state,
    unitstate,
)
from provisioners.local.layout import FLANNEL_NETWORK, OS_NAME, Layout
from provisioners.local.progress import Progress
from stackcheck.lab import EtcdAccess, FlannelConfig, Host, Lab, ServiceControl, SSHAccess

REPO_ROOT = Path(__file__).resolve().parents[2]
ETCD_TIMEOUT = 30
SSH_TIMEOUT = 15
DOCKER_TIMEOUT = 60
CONTAINERD_TIMEOUT = 30


def _wait(what: str, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ProvisionerError(f"{what} not ready after {timeout:g}s")
        time.sleep(0.05)


def _sshd_version() -> str:
    out = subprocess.run(["/usr/sbin/sshd", "-V"], capture_output=True, text=True)
    text = (out.stderr or out.stdout).strip()
    return text.split(",")[0] if text else "unknown"


UNITSTATE = Path(unitstate.__file__)


def control_templates(layout: Layout, host: str | None) -> ServiceControl:
    """Templates that run the control CLI on a host (over SSH) for the existing provisioner."""
    target = shlex.quote(host) if host else '"$(hostname)"'
    base = (f"env PYTHONPATH={shlex.quote(str(REPO_ROOT))} {shlex.quote(sys.executable)} "
            f"-m provisioners.local --state-dir {shlex.quote(str(layout.state_dir))} "
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
        reboot=f"setsid -f {base} reboot >/dev/null 2>&1 </dev/null",
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
    files = pki.tls_files(layout)
    return Lab(
        name=layout.name,
        provisioner="local",
        run_id=layout.run_id,
        owned=True,
        state_dir=layout.state_dir,
        ssh=SSHAccess(user="root", identity_file=layout.ssh_dir / "id_ed25519",
                      known_hosts=layout.ssh_dir / "known_hosts", connect_timeout=10),
        hosts=hosts,
        etcd=EtcdAccess(endpoints=etcd.endpoints(layout), ca_file=files["ca"],
                        cert_file=files["cert"], key_file=files["key"]),
        kubernetes=kubernetes.access(layout, data),
        # the lab's own plumbing: no flanneld, so no DaemonSet in either mode
        flannel=FlannelConfig(etcd_prefix=overlay.PREFIX, mode=layout.flannel, daemonset=""),
        service_control=control_templates(layout, None),
        environment=environment,
    )


def _record_dirs(layout: Layout) -> None:
    sd = layout.state_dir
    for d in (layout.state_dir / "hosts", layout.pki_dir, layout.ssh_dir, layout.images_dir,
              layout.state_dir / "locks"):
        state.add_resource(sd, "dir", str(d))


def build(layout: Layout, progress: Progress) -> Lab:
    """Build the whole lab; the caller tears it down if this raises."""
    sd = layout.state_dir
    hosts = layout.hosts
    env: dict[str, str] = {
        "hosts": str(len(hosts)),
        "subnet": str(layout.subnet),
        "gateway": layout.gateway,
        "kernel": platform.release(),
        "flannel": overlay_kube.MODE_NOTE if layout.flannel == "kube" else overlay.kind(),
        "flannel_mode": layout.flannel,
        "flannel_network": FLANNEL_NETWORK,
        "local_state_dir": str(sd),
        "container_runtime": layout.runtime,
    }
    with state.edit(sd) as st:
        st["hosts"] = {
            h.name: {"dir": str(h.dir), "netns": h.netns, "address": h.address,
                     "etcd": h.etcd, "flannel_subnet": h.flannel_subnet}
            for h in hosts
        }
    kube_flannel = layout.flannel == "kube"  # plumbing only: flanneld runs in etcd mode here
    real_flannel = overlay.flanneld() is not None and not kube_flannel
    with state.edit(sd) as st:
        st["flannel"] = "flanneld" if real_flannel else "plumbing"
        st["docker_available"] = layout.docker
        st["containerd_available"] = layout.runtime == "containerd"
        st["runtime"] = layout.runtime
    _record_dirs(layout)
    with ThreadPoolExecutor(max_workers=max(4, 2 * len(hosts))) as pool:
        with progress.step("preflight, keys and certificates"):
            network.preflight(layout)
            pki.make_tls(layout)
            pki.make_ssh(layout)
            for h in hosts:
                sshd.prepare(layout, h)
                docker.prepare(layout, h)
        k8s = kubernetes.BringUp(layout, pool, progress) if layout.kubernetes else None
        versions = {
            "etcd_version": pool.submit(etcd.version),
            "docker_version" if layout.docker else "containerd_version":
                pool.submit(docker.version if layout.docker else containerd.version),
            "ostree_version": pool.submit(ostree.version),
            "sshd_version": pool.submit(_sshd_version),
        }
        busybox_tar = pool.submit(docker.build_busybox_tar, layout)
        with progress.step(f"network ({len(hosts)} host namespaces on {layout.subnet})"):
            network.create(layout)
        with progress.step("host namespaces (hostname, private /run)"):
            for h in hosts:
                holder.start(layout, h)
            for h in hosts:
                holder.wait_ready(layout, h)
        data = state.read(sd) or {}
        with progress.step(f"start sshd, etcd, {'dockerd' if layout.docker else layout.runtime}"
                           "; ostree sysroots"):
            for h in hosts:
                control.launch(layout, data, h, "sshd")
            for h in layout.etcd_hosts:
                control.launch(layout, data, h, "etcd")
            if layout.runtime == "containerd":
                for h in hosts:
                    control.launch(layout, data, h, "containerd")
            macs: dict[str, str] = {}
            if not real_flannel and not kube_flannel:
                macs = {h.name: overlay.create_vtep(h) for h in hosts}
                for h in hosts:
                    overlay.program_routes(h, [(p, macs[p.name]) for p in hosts])
                for h in hosts:
                    if layout.docker:
                        control.launch(layout, data, h, "docker")
            trees: dict[str, Future[dict[str, str]]] = {
                h.name: pool.submit(ostree.create, layout, h) for h in hosts
            }
        with progress.step(f"etcd cluster healthy ({len(layout.etcd_hosts)} members, TLS)"):
            for h in layout.etcd_hosts:
                control.wait_ready(layout, h, "etcd", ETCD_TIMEOUT)
            _wait("etcd cluster", lambda: etcd.healthy(layout), ETCD_TIMEOUT)
        if k8s:
            k8s.start_control_plane()
        overlay_step = ("overlay (Kubernetes mode: podCIDRs, Node annotations, ConfigMap)"
                        if kube_flannel else f"overlay ({env['flannel']})")
        if kube_flannel:
            # the Nodes need podCIDRs before Docker starts (docker0 takes its --bip from
            # the host's subnet), so the controller-manager starts here
            if k8s is None or k8s.error is not None:
                raise ProvisionerError("option flannel=kube needs Kubernetes: "
                                       f"{k8s.error if k8s else 'kubernetes=false'}")
            # waited for right after its start, where the default flow has Docker's start
            # in between: twice the usual bound
            k8s.start_components(timeout=2 * kubernetes.API_TIMEOUT)
        with progress.step(overlay_step):
            if kube_flannel:
                assert k8s is not None
                subnets = overlay_kube.bring_up(layout, k8s.control)
                if layout.runtime == "containerd":  # the pods' subnet is the Node's podCIDR
                    for h in hosts:
                        containerd.write_cni(h, subnets[h.name])
                data = state.read(sd) or {}
                for h in hosts:
                    if layout.docker:
                        control.launch(layout, data, h, "docker")
            elif real_flannel:
                overlay.write_config(layout)
                for h in hosts:
                    control.launch(layout, data, h, "flannel")
                for h in hosts:
                    bip = overlay.read_subnet(h)
                    with state.edit(sd) as st:
                        st["hosts"][h.name]["bip"] = bip
                data = state.read(sd) or {}
                for h in hosts:
                    if layout.docker:
                        control.launch(layout, data, h, "docker")
            else:
                overlay.write_model(layout, macs)
        with progress.step("sshd answering on every host"):
            for h in hosts:
                control.wait_ready(layout, h, "sshd", SSH_TIMEOUT)
        with progress.step("ostree sysroots deployed"):
            try:
                for name, fut in trees.items():
                    info = fut.result()
                    with state.edit(sd) as st:
                        st["hosts"][name]["ostree"] = info
                    env[f"ostree_sysroot.{name}"] = info["sysroot"]
                    env[f"ostree_booted_file.{name}"] = str(layout.host(name).dir
                                                            / "booted-deployment")
                    env[f"ostree_booted_view.{name}"] = info["view"]
                env["ostree"] = "available"
                env["ostree_os"] = OS_NAME
                env["ostree_branch"] = ostree.BRANCH
                env["ostree_refspec"] = ostree.REFSPEC
            except ProvisionerError as exc:
                env["ostree"] = f"unavailable: {exc}"
                with state.edit(sd) as st:
                    st["ostree_available"] = False
                progress.note(f"ostree unavailable: {exc}")
        if layout.runtime == "containerd":
            env["docker"] = "none (runtime=containerd)"
            with progress.step("containerd answering on every host"):
                env.update(_containerd_up(layout, progress))
        elif not layout.docker:
            env["docker"] = "disabled (option docker=false)"
        else:
            with progress.step("docker daemons and busybox image"):
                env.update(_docker_up(layout, pool, busybox_tar, progress))
        if k8s:
            now = state.read(sd) or {}
            runtime_ok = (layout.docker and now.get("docker_available", True)) or bool(
                now.get("containerd_available"))
            env.update(k8s.finish(runtime_ok))
        else:
            env["kubernetes"] = "disabled (option kubernetes=false)"
        for key, fut in versions.items():
            env[key] = fut.result()
    data = state.read(sd) or {}
    lab = make_lab(layout, data, env)
    from stackcheck.lab import write_inventory

    write_inventory(lab, layout.inventory)
    with state.edit(sd) as st:
        st["status"] = "ready"
        st["environment"] = env
        st["ready_at"] = time.time()
        st["pid"] = os.getpid()
    return lab


def _docker_up(layout: Layout, pool: ThreadPoolExecutor, busybox_tar: Future[Path],
               progress: Progress) -> dict[str, str]:
    """Wait for every dockerd and import busybox; on failure mark docker unavailable."""
    env: dict[str, str] = {}
    try:
        for h in layout.hosts:
            control.wait_ready(layout, h, "docker", DOCKER_TIMEOUT)
        busybox_tar.result()
        list(pool.map(lambda h: docker.import_busybox(layout, h), layout.hosts))
    except ProvisionerError as exc:
        _docker_unavailable(layout, str(exc), progress)
        return {"docker": f"unavailable: {exc}"}
    env["docker"] = "available"
    env["docker_image"] = docker.IMAGE
    for h in layout.hosts:
        env[f"docker_socket.{h.name}"] = str(h.docker_socket)
    return env


def _containerd_up(layout: Layout, progress: Progress) -> dict[str, str]:
    """Wait for every containerd; on failure mark it unavailable (images come with k8s)."""
    try:
        for h in layout.hosts:
            control.wait_ready(layout, h, "containerd", CONTAINERD_TIMEOUT)
    except ProvisionerError as exc:
        progress.note(f"containerd unavailable: {exc}")
        for h in layout.hosts:
            control.act(layout.state_dir, h.name, "containerd", "stop", timeout=10)
        with state.edit(layout.state_dir) as st:
            st["containerd_available"] = False
        return {"containerd": f"unavailable: {exc}"}
    env = {"containerd": "available", "cni": f"{containerd.CNI_NETWORK}: bridge "
           f"{containerd.BRIDGE} + host-local (the host's flannel subnet and MTU), "
           f"plugins in {containerd.CNI_BIN_DIR}"}
    for h in layout.hosts:
        env[f"containerd_socket.{h.name}"] = str(h.run_dir / "containerd" / "containerd.sock")
    return env


def _docker_unavailable(layout: Layout, reason: str, progress: Progress) -> None:
    progress.note(f"docker unavailable: {reason}")
    for h in layout.hosts:
        control.act(layout.state_dir, h.name, "docker", "stop", timeout=10)
    with state.edit(layout.state_dir) as st:
        st["docker_available"] = False
