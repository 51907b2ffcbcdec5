"""Bring-up of a machines lab, step by step, recording everything in the state file first."""

from __future__ import annotations

import platform
import sys
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import requests

from stackcheck.lab import (
    FlannelConfig,
    Host,
    KubernetesAccess,
    Lab,
    ServiceControl,
    write_inventory,
)
from stackcheck.ssh import close_all, host_connection
from stackcheck.waits import wait_for
from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import (
    access,
    etcd,
    k8s_images,
    k8s_nodes,
    k8s_pki,
    k8s_services,
    network,
    overlay,
    pki,
    state,
)
from stackcheck_provisioners.hostlab import docker as local_docker
from stackcheck_provisioners.hostlab.cgroups import CGROUP_ROOT, lab_group
from stackcheck_provisioners.hostlab.layout import FLANNEL_NETWORK, HostPlan, Layout
from stackcheck_provisioners.hostlab.proc import REPO_ROOT, run, spawn
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.machines import config, sysroot
from stackcheck_provisioners.machines import kubernetes as kube
from stackcheck_provisioners.machines.kubernetes import CONTROL_PLANE
from stackcheck_provisioners.machines.tree import OS_NAME, Tree

BOOT_TIMEOUT = 120.0
ETCD_TIMEOUT = 90.0
DOCKER_TIMEOUT = 90.0
K8S_TIMEOUT = 180.0
PAUSE_TAR = "pause-rootfs.tar"
PLUMBING = "flanneld.service: static vxlan plumbing unit (no flanneld binary given)"


def machine_cgroups(layout: Layout, host: HostPlan) -> list[Path]:
    """``stackcheck-<lab>/<host>`` in every mounted hierarchy (created; cpuset filled in).

    The machine's cgroup namespace is rooted there: its systemd and its Docker containers
    live in that subtree, never elsewhere on the machine, and teardown removes it.
    """
    out = []
    for hier in sorted(CGROUP_ROOT.iterdir()):
        if not (hier / "cgroup.procs").exists():
            continue
        path = hier / lab_group(layout.name) / host.name
        path.mkdir(parents=True, exist_ok=True)
        if (hier / "cpuset.cpus").exists():
            for d in (path.parent, path):
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not (d / name).read_text().strip():
                        (d / name).write_text((d.parent / name).read_text())
        out.append(path)
    return out


def make_lab(layout: Layout, env: dict[str, str], k8s: bool = False) -> Lab:
    """The lab's inventory model (``k8s``: Kubernetes runs in the machines)."""
    hosts = []
    base = {k: v for k, v in ServiceControl().units.items() if k != "kubelet"}
    for h in layout.hosts:
        roles = (["etcd"] if h.etcd else []) + ["atomic", "docker", "flannel"]
        control = None
        if k8s:
            names = kube.services(layout, h)
            roles += (["master"] if "kube-apiserver" in names else []) + ["node"]
            units = {**base, **kube.NODE_UNITS, **{n: n for n in names}}
            control = ServiceControl(units=units)
        hosts.append(Host(name=h.name, address=h.address, roles=roles, service_control=control))
    return Lab(
        **access.lab_fields(layout, "machines"),
        hosts=hosts,
        kubernetes=(KubernetesAccess(kubeconfig=k8s_pki.admin_kubeconfig(layout)) if k8s
                    else None),
        flannel=FlannelConfig(etcd_prefix=overlay.PREFIX),
        # systemctl and the default unit names (each machine's own list adds Kubernetes')
        service_control=ServiceControl(units=base),
        environment=env,
    )


def start_machine(layout: Layout, host: HostPlan, tree: Tree, kubelet: bool = False) -> None:
    """Start the host's supervisor (it boots the machine) and record it."""
    sd = layout.state_dir
    groups = machine_cgroups(layout, host)
    for g in groups:
        state.add_resource(sd, "cgroup", str(g), host=host.name)
    marker = host.dir / "ostree-booted"
    argv = [
        sys.executable, "-m", "stackcheck_provisioners.machines.supervisor",
        "--sysroot", str(sysroot.sysroot(host)), "--netns", host.netns,
        "--name", f"{layout.name}-{host.name}", "--upstream", str(tree.repo),
        "--marker", str(marker), "--root", str(host.dir / "root"),
        "--uuid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{layout.name}/{layout.run_id}/{host.name}")),
        *(["--kubelet"] if kubelet else []),
    ]
    enter = " && ".join(f'echo $$ > "{g}/cgroup.procs"' for g in groups) or "true"
    cmd = ["/bin/sh", "-c", f'{enter} && exec "$@"', "supervisor", *argv]
    pid, start = spawn(cmd, log=host.dir / "console.log",
                       env={**layout.env, "PYTHONPATH": str(REPO_ROOT)})
    state.set_process(sd, f"{host.name}/supervisor", {"pid": pid, "start": start,
                                                      "host": host.name})


def _ssh_ok(lab: Lab, host: Host) -> bool:
    try:
        return host_connection(lab, host).run("true").rc == 0
    except Exception:  # noqa: BLE001 - not up yet
        close_all()
        return False


def _active(lab: Lab, host: Host, unit: str) -> str:
    """``systemctl is-active`` of ``unit`` on ``host`` (or why it could not be asked)."""
    try:
        return host_connection(lab, host).run(f"systemctl is-active {unit}").stdout.strip()
    except Exception as exc:  # noqa: BLE001 - for a wait's description only
        close_all()
        return f"unknown (ssh: {type(exc).__name__})"


def _binaries(layout: Layout, progress: Progress) -> Path:
    from stackcheck_builders.kubernetes import Progress as BuildProgress
    from stackcheck_builders.kubernetes import ensure_binaries

    given = layout.k8s_bin_dir
    return ensure_binaries(bin_dir=Path(given) if given else None,
                           progress=BuildProgress(progress.console))


def _k8s_binaries(layout: Layout, future: Future[Path] | None, progress: Progress
                  ) -> tuple[Path | None, str]:
    """The binaries, or None and why Kubernetes is not run."""
    from stackcheck_builders.kubernetes import K8sBuildError

    if future is None:
        return None, "disabled (option kubernetes=false)"
    try:
        return future.result(), ""
    except (K8sBuildError, ProvisionerError, OSError) as exc:
        progress.note(f"Kubernetes unavailable: {exc}")
        return None, f"unavailable: no Kubernetes binaries: {exc}"


def _journal(lab: Lab, host: Host, unit: str, lines: int = 3) -> str:
    """The unit's state and last journal lines on ``host`` (for a wait's description)."""
    try:
        out = host_connection(lab, host).run(
            f"systemctl is-active {unit}; journalctl -u {unit} -n {lines} --no-pager -q "
            "-o cat 2>&1 | cut -c1-240")
    except Exception as exc:  # noqa: BLE001 - for a wait's description only
        close_all()
        return f"{unit}: unknown (ssh: {type(exc).__name__})"
    state_, _, log = out.stdout.strip().partition("\n")
    return f"{unit} {state_}" + (f" ({' | '.join(log.splitlines())})" if log else "")


def _nodes(layout: Layout) -> dict[str, str] | str:
    """Node name -> ``Ready`` or why not (as the API says), or why the API cannot tell."""
    control = layout.hosts[0]
    try:
        with k8s_services.session(layout) as s:
            reply = s.get(k8s_services.api_url(control, "/api/v1/nodes"), timeout=5)
        reply.raise_for_status()
        items = reply.json()["items"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        return f"cannot list nodes: {type(exc).__name__}"
    return {n["metadata"]["name"]: k8s_nodes.node_state(n) for n in items}


def _default_token(layout: Layout) -> bool:
    try:
        with k8s_services.session(layout) as s:
            reply = s.get(k8s_services.api_url(
                layout.hosts[0], "/api/v1/namespaces/default/serviceaccounts/default"), timeout=5)
        return reply.status_code == 200 and bool(reply.json().get("secrets"))
    except (requests.RequestException, ValueError):
        return False


def start_kubernetes(layout: Layout, lab: Lab, progress: Progress) -> None:
    """Images into each containerd; wait (bounded) for the control plane and Ready nodes."""
    control = lab.hosts[0]
    with progress.step("Kubernetes images (pause, busybox) into each containerd (k8s.io)"):
        for h in lab.hosts:
            out = host_connection(lab, h).run(kube.images_command(
                f"/var/tmp/{PAUSE_TAR}", local_docker.IMAGE))
            if out.rc != 0:
                raise ProvisionerError(f"{h.name}: importing the Kubernetes images into "
                                       f"containerd failed: {(out.stderr or out.stdout)[-300:]}")
    with progress.step(f"kube-apiserver.service ready on {control.name} (TLS, RBAC, etcd "
                       f"{k8s_services.etcd_prefix(layout)})"):
        wait_for(lambda: k8s_services.ready(layout, layout.hosts[0], "kube-apiserver"),
                 timeout=K8S_TIMEOUT, interval=1,
                 what=f"{control.name}: kube-apiserver to answer /readyz",
                 describe=lambda: _journal(lab, control, "kube-apiserver"))
    with progress.step("controller-manager, scheduler, default service account"):
        for service in CONTROL_PLANE[1:]:
            wait_for(lambda s=service: k8s_services.ready(layout, layout.hosts[0], s),
                     timeout=K8S_TIMEOUT, interval=1,
                     what=f"{control.name}: {service} to answer /healthz",
                     describe=lambda s=service: _journal(lab, control, s))
        wait_for(lambda: _default_token(layout), timeout=K8S_TIMEOUT, interval=1,
                 what="the default service account's token")
    want = {h.name for h in lab.hosts}

    def ready() -> bool:
        nodes = _nodes(layout)
        return isinstance(nodes, dict) and all(nodes.get(n) == "Ready" for n in want)

    def seen() -> str:
        nodes = _nodes(layout)
        if isinstance(nodes, str):
            return nodes
        return "; ".join(
            f"{h.name}: {nodes.get(h.name, 'no Node')}"
            + ("" if nodes.get(h.name) == "Ready" else f", {_journal(lab, h, 'kubelet')}")
            for h in lab.hosts)

    with progress.step(f"{len(want)} nodes Ready (kubelet.service on containerd)"):
        wait_for(ready, timeout=K8S_TIMEOUT, interval=1,
                 what=f"{len(want)} Ready nodes", describe=seen)


def build(layout: Layout, tree: Tree, progress: Progress, flanneld: Path | None = None) -> Lab:
    """Build the whole lab; the caller tears it down if this raises.

    ``flanneld``: the user's flanneld binary for ``flanneld.service`` (else the static unit).
    """
    sd = layout.state_dir
    hosts = layout.hosts
    env: dict[str, str] = {
        "hosts": str(len(hosts)), "subnet": str(layout.subnet), "gateway": layout.gateway,
        "kernel": platform.release(),
        "machines": "systemd-nspawn --boot (systemd as PID 1), one ostree sysroot each",
        "machine_tree": f"{tree.repo.parent.name} ({', '.join(c[:10] for c in tree.commits)})",
        "flannel": (f"flanneld.service: the user's flanneld ({flanneld})" if flanneld
                    else PLUMBING),
        "flannel_network": FLANNEL_NETWORK,
        "ostree": "available", "ostree_os": OS_NAME, "ostree_branch": tree.branch,
        "ostree_refspec": sysroot.refspec(tree),
        "docker_image": local_docker.IMAGE,
        "machines_state_dir": str(sd),
    }
    with state.edit(sd) as st:
        st["hosts"] = {h.name: {"dir": str(h.dir), "netns": h.netns, "address": h.address,
                                "etcd": h.etcd} for h in hosts}
        st["tree"] = {"repo": str(tree.repo), "commits": tree.commits}
    for d in (sd / "hosts", layout.pki_dir, layout.ssh_dir, layout.images_dir):
        state.add_resource(sd, "dir", str(d))
    with ThreadPoolExecutor(max_workers=max(4, len(hosts))) as pool:
        bins_future = pool.submit(_binaries, layout, progress) if layout.kubernetes else None
        with progress.step("preflight, keys and certificates"):
            network.preflight(layout)
            pki.make_tls(layout)
            pki.make_ssh(layout)
            if layout.kubernetes:
                state.add_resource(sd, "dir", str(k8s_pki.k8s_dir(layout)))
                kube.make_certificates(layout)
        image = pool.submit(local_docker.build_busybox_tar, layout)
        with progress.step(f"network ({len(hosts)} host namespaces on {layout.subnet})"):
            network.create(layout)
            if layout.kubernetes:
                for h in hosts:  # kube-proxy's: the machine's /proc/sys/net is read-only
                    run(["ip", "netns", "exec", h.netns, "sysctl", "-q", "-w",
                         "net.ipv4.conf.all.route_localnet=1"])
        with progress.step(f"ostree sysroots: deploy versions 1 and 2 ({len(hosts)} hosts)"):
            deps = dict(zip([h.name for h in hosts],
                            pool.map(lambda h: sysroot.deploy(h, tree), hosts), strict=True))
        if bins_future is not None:
            with progress.step("Kubernetes binaries (the cached offline build)"):
                bins, why = _k8s_binaries(layout, bins_future, progress)
        else:
            bins, why = None, "disabled (option kubernetes=false)"
        lab = make_lab(layout, env, k8s=bins is not None)
        with progress.step("configuration files (/etc of each deployment, /var)"):
            tar = image.result()
            pause = k8s_images.build_pause_tar(layout, bins / "pause") if bins else None
            for h in hosts:
                for dep in deps[h.name]:
                    config.write_etc(layout, h, dep, flanneld=flanneld is not None,
                                     pods=bins is not None)
                    if bins is not None:
                        kube.write_etc(layout, h, dep)
                config.write_var(layout, h)
                if flanneld is not None:
                    config.install_flanneld(flanneld, h)
                config.copy_image(tar, h)
                if bins is not None and pause is not None:
                    kube.install(bins, layout, h)
                    config.copy_image(pause, h)
        with progress.step(f"boot {len(hosts)} machines (systemd-nspawn, supervised)"):
            for h in hosts:
                start_machine(layout, h, tree, kubelet=bins is not None)
        with progress.step("sshd answering on every machine"):
            for h in lab.hosts:
                wait_for(lambda h=h: _ssh_ok(lab, h), timeout=BOOT_TIMEOUT, interval=0.5,
                         what=f"{h.name}: ssh.service to accept the lab's key",
                         describe=lambda h=h: f"see {layout.host(h.name).dir / 'console.log'}")
        with progress.step(f"etcd.service healthy ({len(layout.etcd_hosts)} members, TLS)"):
            wait_for(lambda: etcd.healthy(layout), timeout=ETCD_TIMEOUT, interval=0.5,
                     what="the etcd cluster to be healthy",
                     describe=lambda: "; ".join(
                         f"{h.name}: etcd {_active(lab, h, 'etcd')}" for h in lab.hosts
                         if h.has_role("etcd")))
        if flanneld is not None:
            with progress.step("flannel network config in etcd (flanneld takes the leases)"):
                overlay.write_config(layout)
        else:
            with progress.step("flannel data model in etcd (config, one lease per host)"):
                overlay.write_model(layout, {h.name: config.vtep_mac(h) for h in hosts})
        with progress.step("docker.service active; busybox image imported"):
            for h in lab.hosts:
                wait_for(lambda h=h: _active(lab, h, "docker") == "active",
                         timeout=DOCKER_TIMEOUT, interval=1,
                         what=f"{h.name}: docker.service to be active",
                         describe=lambda h=h: f"docker.service {_active(lab, h, 'docker')}")
            path = f"/var/tmp/{tar.name}"
            for h in lab.hosts:
                conn = host_connection(lab, h)
                out = conn.run(f"docker import --change 'CMD [\"sh\"]' {path} "
                               f"{local_docker.IMAGE} && docker tag {local_docker.IMAGE} "
                               f"{local_docker.ALIASES[0]} && rm -f {path}")
                if out.rc != 0:
                    raise ProvisionerError(f"{h.name}: docker import failed: {out.stderr[-300:]}")
        env["docker"] = "available"
        env["etcd_version"] = etcd.version()
        if bins is not None:
            with state.edit(sd) as st:
                st["kubernetes"] = {"bin_dir": str(bins), "control_plane": hosts[0].name,
                                    "kubelets": True, "runtime": "containerd"}
            start_kubernetes(layout, lab, progress)
            env.update({
                "kubernetes": (f"control plane on {hosts[0].name} + {len(hosts)} kubelets: "
                               "systemd units in the machines, containerd (CRI)"),
                "kubernetes_version": k8s_services.version(bins),
                "kubernetes_api": k8s_services.api_url(hosts[0], ""),
                "kubernetes_etcd_prefix": k8s_services.etcd_prefix(layout),
                "container_runtime": "containerd (Debian's, CRI plugin) for the kubelets",
            })
        else:
            env["kubernetes"] = why
    write_inventory(lab, layout.inventory)
    with state.edit(sd) as st:
        st["status"] = "ready"
        st["environment"] = env
        st["ready_at"] = time.time()
    return lab
