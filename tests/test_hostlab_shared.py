"""What the local and the machines labs take from one place in the kit: their options, the
containerd CRI config, the kubelet and kube-proxy command lines (no root, no lab)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from stackcheck.runtime.parse import parse_containerd_config
from stackcheck_provisioners.base import ProvisionConfig, ProvisionerError
from stackcheck_provisioners.hostlab import containerd, kubelet
from stackcheck_provisioners.local import LocalProvisioner
from stackcheck_provisioners.local.provisioner import layout_for as local_layout
from stackcheck_provisioners.machines import MachinesProvisioner
from stackcheck_provisioners.machines import kubernetes as kube
from stackcheck_provisioners.machines.provisioner import layout_for as machines_layout

# no kernel object is made: the names and subnets only keep clear of other labs (h3's range)
LOCAL = {"name": "hw3unit", "subnet": "10.243.1.0/24", "runtime": "containerd"}
MACHINES = {"name": "hw3unitm", "subnet": "10.243.2.0/24"}


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _flag_names(argv: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in argv if a.startswith("--")]


def test_both_labs_validate_the_kit_options_the_same_way() -> None:
    for provisioner in (LocalProvisioner, MachinesProvisioner):
        with pytest.raises(ProvisionerError) as bad:
            provisioner.parse_options({"subnet": "8.8.8.0/24", "name": "Bad Name",
                                       "docker": "perhaps"})
        assert str(bad.value).splitlines() == [
            f"{provisioner.name}: option name='Bad Name': use 1-20 of a-z, 0-9 and '-'",
            f"{provisioner.name}: option subnet='8.8.8.0/24': must be a private range",
            f"{provisioner.name}: option docker='perhaps': expected true or false "
            "(yes/no, on/off, 1/0)"]
    machines = MachinesProvisioner.parse_options({"kubernetes": "off"})
    assert (machines.name, machines.subnet, machines.kubernetes) == (
        "machines", "10.212.0.0/24", False)
    with pytest.raises(ProvisionerError) as unknown:
        MachinesProvisioner.parse_options({"runtime": "containerd"})
    assert str(unknown.value) == ("machines: unknown option 'runtime'; known: keep_on_failure, "
                                  "name, subnet, docker, kubernetes, k8s_bin_dir, flanneld")


def test_one_containerd_config_differs_only_in_paths_and_oom_score_restriction(
        tmp_path: Path) -> None:
    host = local_layout(ProvisionConfig("r", tmp_path, hosts=1, options=LOCAL)).hosts[0]
    local = _leaves(tomllib.loads(containerd.config_toml(host, tmp_path / "runc-wrapper")))
    machine = _leaves(tomllib.loads(kube.CONTAINERD_CONFIG))
    cri = "plugins.io.containerd.grpc.v1.cri."
    assert set(machine) - set(local) == {f"{cri}restrict_oom_score_adj"}
    assert set(local) == set(machine) - {f"{cri}restrict_oom_score_adj"}
    differ = {key for key in local if local[key] != machine[key]}
    assert differ == {"root", "plugins.io.containerd.internal.v1.opt.path",
                      f"{cri}containerd.runtimes.runc.options.BinaryName", f"{cri}cni.conf_dir"}
    seen = parse_containerd_config(kube.CONTAINERD_CONFIG)
    assert (seen.runc_binary, seen.cni_conf_dir, seen.address) == (
        "/etc/kubernetes/runc-wrapper", "/etc/cni/net.d", "/run/containerd/containerd.sock")


def test_one_kubelet_command_line_differs_only_in_paths(tmp_path: Path) -> None:
    layout = local_layout(ProvisionConfig("r", tmp_path, hosts=2, options=LOCAL))
    host = layout.hosts[1]
    files = kubelet.node_files(layout, host, Path("/bins"))
    local = kubelet.kubelet_flags(host, files, kubelet.runtime_flags(layout, host))
    # the same subnet: only the paths may differ
    machine_host = machines_layout(ProvisionConfig(
        "r", tmp_path, hosts=2, options={**MACHINES, "subnet": LOCAL["subnet"]})).hosts[1]
    machine = kube.kubelet_argv(machine_host)
    # the machine's kubelet keeps its defaults for its own dirs and the pods' cgroup parent
    assert [f for f in _flag_names(local)
            if f not in ("--root-dir", "--cert-dir", "--cgroup-root")] == _flag_names(machine)
    assert machine[0] == "/usr/local/bin/kubelet" and local[0] == "/bins/kubelet"
    assert not any(str(tmp_path) in a for a in machine)
    assert {a for a in machine if "=/" not in a and a.startswith("--")} <= set(local)
    proxy = kube.proxy_argv(machine_host)
    assert _flag_names(proxy) == _flag_names(kubelet.proxy_flags(host, files))
    assert {a for a in proxy if "=/" not in a} - {proxy[0]} <= set(
        kubelet.proxy_flags(host, files))


def test_the_control_cli_loads_neither_pydantic_nor_cryptography() -> None:
    """Issue 27: the local lab runs its control CLI over SSH for every service stop, start
    and reboot, a hundred times in a 48-host run, on the etcd chain too. Importing the
    inventory model (pydantic), the entry points and the certificate code cost ~0.5 s of CPU
    per call; the CLI needs none of them."""
    import subprocess
    import sys

    heavy = ("pydantic", "cryptography", "yaml", "importlib.metadata")
    code = ("import sys, stackcheck_provisioners.local.control; "
            f"print(' '.join(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "", f"the control CLI imports {done.stdout.strip()}"
    # and the contract is still there for everything else, the same classes
    from stackcheck import provisioner
    from stackcheck_provisioners import base

    assert base.ProvisionerError is provisioner.ProvisionerError
    assert base.Provisioner is provisioner.Provisioner
