"""Configuration files a machine gets before its first boot — nothing else is stackcheck's.

Written into ``/etc`` of every deployment (ostree carries ``/etc`` changes into new
deployments by its 3-way merge, as on any Atomic host) and into the stateroot's ``/var``:

- ``/etc/hostname``, ``/etc/hosts``;
- sshd: the host's own key and ``/etc/ssh/sshd_config.d/lab.conf``; root's
  ``authorized_keys`` in ``/var/roothome/.ssh``;
- etcd (first 3 hosts): ``/etc/default/etcd`` for Debian's ``etcd.service`` (TLS client and
  peer, the 3-member cluster) and certificates in ``/etc/etcd/pki``; other hosts mask it;
- Docker: ``/etc/docker/daemon.json`` (bridge in the host's flannel subnet, flannel MTU) and
  a drop-in ordering ``docker.service`` after ``flanneld.service``;
- ``flanneld.service``: with the user's flanneld (option ``flanneld=PATH``, copied to
  ``/usr/local/bin``) the unit runs it against the lab's etcd (TLS) and Docker takes its
  bridge from ``/run/flannel/subnet.env`` (a drop-in, as on CoreOS). Without one (no flanneld
  is packaged for Debian) the unit of that name sets up what flanneld's vxlan backend sets up
  (``flannel.1`` with the MAC its lease announces, neighbour/FDB/route entries for every
  other host, ``/run/flannel/subnet.env``) from ``/etc/flannel/vxlan.env``, and removes it on
  stop.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
from pathlib import Path

from stackcheck.flannel.model import DEFAULT_VNI as VNI
from stackcheck.lab import DEFAULT_FLANNEL_PREFIX as PREFIX
from stackcheck_provisioners.hostlab.layout import (
    FLANNEL_MTU,
    FLANNEL_NETWORK,
    VXLAN_PORT,
    HostPlan,
    Layout,
)
from stackcheck_provisioners.machines.sysroot import passwd_ids, stateroot_var

SSHD_CONF = """\
# lab: the host key made for this machine; key logins only
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
UseDNS no
"""

FLANNEL_UNIT = """\
[Unit]
Description=flannel vxlan overlay (static: same plumbing and subnet.env as flanneld's backend)
After=network.target
Before=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=/etc/flannel/vxlan.env
ExecStart=/bin/sh /etc/flannel/vxlan-up.sh
ExecStop=/bin/sh -c 'ip link del flannel.1 2>/dev/null; rm -f /run/flannel/subnet.env'

[Install]
WantedBy=multi-user.target
"""

FLANNEL_UP = f"""\
#!/bin/sh
# flannel.1 as flanneld's vxlan backend makes it; peers from PEERS="subnet,vtep_ip,mac ..."
set -eu
ip link del flannel.1 2>/dev/null || true
ip link add flannel.1 address "$VTEP_MAC" type vxlan id {VNI} local "$PUBLIC_IP" dev eth0 \\
    dstport {VXLAN_PORT} nolearning
ip link set flannel.1 mtu {FLANNEL_MTU}
ip addr add "$VTEP_ADDR/32" dev flannel.1
ip link set flannel.1 up
for peer in $PEERS; do
    subnet=${{peer%%,*}}; rest=${{peer#*,}}; ip=${{rest%%,*}}; mac=${{rest#*,}}
    gw=${{subnet%/*}}
    ip neigh replace "$gw" lladdr "$mac" dev flannel.1 nud permanent
    bridge fdb replace "$mac" dev flannel.1 dst "$ip" self permanent
    ip route replace "$subnet" via "$gw" dev flannel.1 onlink
done
mkdir -p /run/flannel
cat > /run/flannel/subnet.env <<EOF
FLANNEL_NETWORK={FLANNEL_NETWORK}
FLANNEL_SUBNET=$FLANNEL_SUBNET
FLANNEL_MTU={FLANNEL_MTU}
FLANNEL_IPMASQ=false
EOF
"""

DOCKER_DROPIN = """\
[Unit]
After=flanneld.service
Wants=flanneld.service
"""

FLANNELD_UNIT = f"""\
[Unit]
Description=flannel overlay (flanneld, vxlan backend)
After=network.target
Before=docker.service

[Service]
ExecStart=/usr/local/bin/flanneld --etcd-endpoints={{endpoints}} \\
    --etcd-cafile=/etc/flannel/pki/ca.crt --etcd-certfile=/etc/flannel/pki/client.crt \\
    --etcd-keyfile=/etc/flannel/pki/client.key --etcd-prefix={PREFIX} \\
    --iface=eth0 --ip-masq=false --subnet-file=/run/flannel/subnet.env
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
"""

#: Docker's bridge from flanneld's subnet.env (waits for it), socket activation kept;
#: ``$$`` is systemd's escape for a ``$`` the shell sees
DOCKER_FLANNELD_DROPIN = """\
[Unit]
After=flanneld.service
Wants=flanneld.service

[Service]
ExecStartPre=/bin/sh -c 'for i in $$(seq 60); do [ -s /run/flannel/subnet.env ] && exit 0; \\
    sleep 1; done; echo "no /run/flannel/subnet.env from flanneld" >&2; exit 1'
ExecStart=
ExecStart=/bin/sh -c '. /run/flannel/subnet.env && exec /usr/sbin/dockerd -H fd:// \\
    --containerd=/run/containerd/containerd.sock --bip=$${FLANNEL_SUBNET} --mtu=$${FLANNEL_MTU}'
"""


def vtep_mac(host: HostPlan) -> str:
    """A fixed, locally administered MAC for the host's flannel.1 (announced in its lease)."""
    return f"0e:73:63:00:{host.index >> 8:02x}:{host.index & 0xFF:02x}"


def _write(path: Path, text: str | bytes, mode: int = 0o644, owner: tuple[int, int] = (0, 0)
           ) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # never write through a hard link into the ostree repo
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    os.chown(path, *owner)
    path.chmod(mode)


def etcd_env(layout: Layout, host: HostPlan) -> str:
    cluster = ",".join(f"{h.name}=https://{h.address}:2380" for h in layout.etcd_hosts)
    pki = "/etc/etcd/pki"
    values = {
        "ETCD_NAME": host.name,
        "ETCD_DATA_DIR": "/var/lib/etcd/default",
        "ETCD_LISTEN_CLIENT_URLS": f"https://{host.address}:2379",
        "ETCD_ADVERTISE_CLIENT_URLS": f"https://{host.address}:2379",
        "ETCD_LISTEN_PEER_URLS": f"https://{host.address}:2380",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": f"https://{host.address}:2380",
        "ETCD_INITIAL_CLUSTER": cluster,
        "ETCD_INITIAL_CLUSTER_STATE": "new",
        "ETCD_INITIAL_CLUSTER_TOKEN": f"{layout.name}-{layout.run_id}",
        "ETCD_CERT_FILE": f"{pki}/server.crt",
        "ETCD_KEY_FILE": f"{pki}/server.key",
        "ETCD_TRUSTED_CA_FILE": f"{pki}/ca.crt",
        "ETCD_CLIENT_CERT_AUTH": "true",
        "ETCD_PEER_CERT_FILE": f"{pki}/server.crt",
        "ETCD_PEER_KEY_FILE": f"{pki}/server.key",
        "ETCD_PEER_TRUSTED_CA_FILE": f"{pki}/ca.crt",
        "ETCD_PEER_CLIENT_CERT_AUTH": "true",
    }
    return "# etcd member of the lab (Debian etcd.service reads this file)\n" + "".join(
        f"{k}={v}\n" for k, v in values.items())


def flannel_env(layout: Layout, host: HostPlan) -> str:
    subnet = ipaddress.IPv4Network(host.flannel_subnet)
    peers = " ".join(f"{p.flannel_subnet},{p.address},{vtep_mac(p)}"
                     for p in layout.hosts if p.name != host.name)
    return (f"PUBLIC_IP={host.address}\nVTEP_MAC={vtep_mac(host)}\n"
            f"VTEP_ADDR={subnet.network_address}\nFLANNEL_SUBNET={host.bridge_ip}/{subnet.prefixlen}\n"
            f'PEERS="{peers}"\n')


def docker_daemon(host: HostPlan, bridge: bool = True, pods: bool = False) -> str:
    """daemon.json; ``bridge``: bip/MTU here (else flanneld's subnet.env gives them);
    ``pods``: Docker's containers take the lower half of the lease, the kubelet's pods the
    upper (both on ``docker0``)."""
    config: dict[str, object] = {
        "iptables": False, "ip-masq": False, "storage-driver": "overlay2", "shutdown-timeout": 2,
        "exec-opts": ["native.cgroupdriver=cgroupfs"],
    }
    if bridge:
        config = {"bip": f"{host.bridge_ip}/24", "mtu": FLANNEL_MTU, **config}
        if pods:
            config["fixed-cidr"] = f"{host.bridge_ip.rsplit('.', 1)[0]}.0/25"
    return json.dumps(config, indent=2) + "\n"


def write_etc(layout: Layout, host: HostPlan, deployment: Path, flanneld: bool = False,
              pods: bool = False) -> None:
    """Every config file of ``host`` into one deployment's /etc (``flanneld``: the user's
    flanneld runs the overlay; ``pods``: a kubelet shares the lease with Docker)."""
    etc = deployment / "etc"
    _write(etc / "hostname", f"{host.name}\n")
    hosts = "".join(f"{h.address} {h.name}\n" for h in layout.hosts)
    _write(etc / "hosts", f"127.0.0.1 localhost\n::1 localhost\n{hosts}")
    key = host.dir / "ssh_host_ed25519_key"
    _write(etc / "ssh/ssh_host_ed25519_key", key.read_bytes(), 0o600)
    _write(etc / "ssh/ssh_host_ed25519_key.pub", key.with_suffix(".pub").read_bytes())
    _write(etc / "ssh/sshd_config.d/lab.conf", SSHD_CONF)
    units = etc / "systemd/system"
    if host.etcd:
        owner = passwd_ids(deployment, "etcd")
        pki = layout.pki_dir
        _write(etc / "default/etcd", etcd_env(layout, host))
        _write(etc / "etcd/pki/ca.crt", (pki / "ca.crt").read_bytes())
        _write(etc / "etcd/pki/server.crt", (pki / f"{host.name}-etcd.crt").read_bytes())
        _write(etc / "etcd/pki/server.key", (pki / f"{host.name}-etcd.key").read_bytes(),
               0o600, owner)
    else:
        mask = units / "etcd.service"
        mask.unlink(missing_ok=True)
        mask.symlink_to("/dev/null")
    _write(etc / "docker/daemon.json", docker_daemon(host, bridge=not flanneld, pods=pods))
    if flanneld:
        pki = layout.pki_dir
        for name in ("ca.crt", "client.crt", "client.key"):
            _write(etc / "flannel/pki" / name, (pki / name).read_bytes(),
                   0o600 if name.endswith(".key") else 0o644)
        endpoints = ",".join(f"https://{h.address}:2379" for h in layout.etcd_hosts)
        _write(units / "flanneld.service", FLANNELD_UNIT.format(endpoints=endpoints))
        _write(units / "docker.service.d/flannel.conf", DOCKER_FLANNELD_DROPIN)
    else:
        _write(etc / "flannel/vxlan.env", flannel_env(layout, host))
        _write(etc / "flannel/vxlan-up.sh", FLANNEL_UP, 0o755)
        _write(units / "flanneld.service", FLANNEL_UNIT)
        _write(units / "docker.service.d/flannel.conf", DOCKER_DROPIN)
    wants = units / "multi-user.target.wants/flanneld.service"
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.unlink(missing_ok=True)
    wants.symlink_to("/etc/systemd/system/flanneld.service")


def write_var(layout: Layout, host: HostPlan) -> None:
    """root's authorized_keys and the busybox image tar, in the stateroot's /var."""
    var = stateroot_var(host)
    ssh = var / "roothome/.ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    (var / "roothome").chmod(0o700)
    ssh.chmod(0o700)
    _write(ssh / "authorized_keys", (layout.ssh_dir / "authorized_keys").read_bytes(), 0o600)
    for sub in ("home", "srv", "mnt", "opt", "usrlocal"):
        (var / sub).mkdir(exist_ok=True)


def install_flanneld(binary: Path, host: HostPlan) -> None:
    """The user's flanneld as ``/usr/local/bin/flanneld`` (``/var/usrlocal`` on ostree)."""
    dest = stateroot_var(host) / "usrlocal/bin/flanneld"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(binary, dest)
    dest.chmod(0o755)


def copy_image(tar: Path, host: HostPlan) -> str:
    """Put the image tar in the machine's /var/tmp; return its path inside the machine."""
    dest = stateroot_var(host) / "tmp" / tar.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tar, dest)
    return f"/var/tmp/{tar.name}"
