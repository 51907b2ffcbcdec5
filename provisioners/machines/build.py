"""Bring-up of a machines lab, step by step, recording everything in the state file first."""

from __future__ import annotations

import platform
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from provisioners.base import ProvisionerError
from provisioners.local import docker as local_docker
from provisioners.local import etcd, network, overlay, pki, state
from provisioners.local.cgroups import CGROUP_ROOT, lab_group
from provisioners.local.layout import FLANNEL_NETWORK, HostPlan, Layout
from provisioners.local.proc import spawn
from provisioners.local.progress import Progress
from provisioners.machines import config, sysroot
from provisioners.machines.tree import OS_NAME, Tree
from stackcheck.lab import (
    EtcdAccess,
    FlannelConfig,
    Host,
    Lab,
    ServiceControl,
    SSHAccess,
    write_inventory,
)
from stackcheck.ssh import close_all, host_connection
from stackcheck.waits import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT = 120.0
ETCD_TIMEOUT = 90.0
DOCKER_TIMEOUT = 90.0
KUBERNETES = ("none: kubelet/kube-proxy were not run in these machines (not attempted: "
              "systemd-nspawn on this cgroup-v1 host without systemd; see README)")
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


def make_lab(layout: Layout, env: dict[str, str]) -> Lab:
    hosts = []
    for h in layout.hosts:
        roles = (["etcd"] if h.etcd else []) + ["atomic", "docker", "flannel"]
        hosts.append(Host(name=h.name, address=h.address, roles=roles))
    files = pki.tls_files(layout)
    return Lab(
        name=layout.name, provisioner="machines", run_id=layout.run_id, owned=True,
        state_dir=layout.state_dir,
        ssh=SSHAccess(user="root", identity_file=layout.ssh_dir / "id_ed25519",
                      known_hosts=layout.ssh_dir / "known_hosts", connect_timeout=10),
        hosts=hosts,
        etcd=EtcdAccess(endpoints=etcd.endpoints(layout), ca_file=files["ca"],
                        cert_file=files["cert"], key_file=files["key"]),
        flannel=FlannelConfig(etcd_prefix=overlay.PREFIX),
        # systemctl and the default unit names; no kubelet: this lab runs no Kubernetes
        service_control=ServiceControl(units={k: v for k, v in ServiceControl().units.items()
                                              if k != "kubelet"}),
        environment=env,
    )


def start_machine(layout: Layout, host: HostPlan, tree: Tree) -> None:
    """Start the host's supervisor (it boots the machine) and record it."""
    sd = layout.state_dir
    groups = machine_cgroups(layout, host)
    for g in groups:
        state.add_resource(sd, "cgroup", str(g), host=host.name)
    marker = host.dir / "ostree-booted"
    argv = [
        sys.executable, "-m", "provisioners.machines.supervisor",
        "--sysroot", str(sysroot.sysroot(host)), "--netns", host.netns,
        "--name", f"{layout.name}-{host.name}", "--upstream", str(tree.repo),
        "--marker", str(marker),
        "--uuid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{layout.name}/{layout.run_id}/{host.name}")),
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
        "kubernetes": KUBERNETES,
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
        with progress.step("preflight, keys and certificates"):
            network.preflight(layout)
            pki.make_tls(layout)
            pki.make_ssh(layout)
        lab = make_lab(layout, env)
        image = pool.submit(local_docker.build_busybox_tar, layout)
        with progress.step(f"network ({len(hosts)} host namespaces on {layout.subnet})"):
            network.create(layout)
        with progress.step(f"ostree sysroots: deploy versions 1 and 2 ({len(hosts)} hosts)"):
            deps = dict(zip([h.name for h in hosts],
                            pool.map(lambda h: sysroot.deploy(h, tree), hosts), strict=True))
        with progress.step("configuration files (/etc of each deployment, /var)"):
            tar = image.result()
            for h in hosts:
                for dep in deps[h.name]:
                    config.write_etc(layout, h, dep, flanneld=flanneld is not None)
                config.write_var(layout, h)
                if flanneld is not None:
                    config.install_flanneld(flanneld, h)
                config.copy_image(tar, h)
        with progress.step(f"boot {len(hosts)} machines (systemd-nspawn, supervised)"):
            for h in hosts:
                start_machine(layout, h, tree)
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
    write_inventory(lab, layout.inventory)
    with state.edit(sd) as st:
        st["status"] = "ready"
        st["environment"] = env
        st["ready_at"] = time.time()
    return lab
