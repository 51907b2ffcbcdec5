"""Inventory validation: malformed files give one clear line naming file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stackcheck.lab import InventoryError, Lab, load_inventory, write_inventory

GOOD = """\
name: lab1
ssh:
  user: core
  identity_file: id_ed25519
  known_hosts: known_hosts
hosts:
  - name: h1
    address: 192.0.2.11
    roles: [etcd, master, node]
  - name: h2
    address: 192.0.2.12
    roles: [etcd, node]
etcd:
  endpoints: [https://192.0.2.11:2379]
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "inventory.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_inventory_resolves_relative_paths(ssh_files: Path) -> None:
    lab = load_inventory(write(ssh_files, GOOD))
    assert lab.ssh.identity_file == ssh_files / "id_ed25519"
    assert lab.ssh.known_hosts == ssh_files / "known_hosts"
    assert [h.name for h in lab.hosts_with("etcd")] == ["h1", "h2"]
    assert lab.flannel.etcd_prefix == "/coreos.com/network"
    assert lab.control_for(lab.host("h1")).command("stop", "flannel") == "systemctl stop flanneld"


def test_round_trip_through_yaml(ssh_files: Path) -> None:
    lab = load_inventory(write(ssh_files, GOOD))
    again = load_inventory(write_inventory(lab, ssh_files / "copy" / "inventory.yaml"))
    assert again == lab


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("    address: 192.0.2.12\n", "    address: 192.0.2.300\n"),
         ":11: hosts[1].address: expected an IP address, got '192.0.2.300'"),
        (GOOD.replace("  - name: h2\n    address: 192.0.2.12\n", "  - address: 192.0.2.12\n"),
         ":10: hosts[1].name: required field is missing"),
        (GOOD.replace("roles: [etcd, node]", "roles: [etcd, nodes]"),
         ":12: hosts[1].roles: unknown role(s) nodes; expected some of atomic, docker, etcd, "
         "flannel, master, node"),
        (GOOD.replace("  user: core\n", "  user: core\n  prot: 22\n"),
         ":4: ssh.prot: unknown field"),
        (GOOD.replace("  port: 22\n", "").replace("  user: core\n", "  user: core\n  port: ssh\n"),
         ":4: ssh.port: Input should be a valid integer, unable to parse string as an integer"),
        (GOOD.replace("https://192.0.2.11:2379", "192.0.2.11:2379"),
         ":14: etcd.endpoints: expected http(s)://host:port, got '192.0.2.11:2379'"),
        (GOOD.replace("known_hosts: known_hosts", "known_hosts: nowhere"),
         ":5: ssh.known_hosts: file not found: {dir}/nowhere"),
        (GOOD.replace("  - name: h2", "  - name: h1"),
         ":10: hosts[1].name: duplicate host name 'h1'"),
        (GOOD.replace("endpoints: [https://192.0.2.11:2379]",
                      "endpoints: [https://192.0.2.11:2379, https://192.0.2.99:2379]"),
         ":14: etcd.endpoints[1]: https://192.0.2.99:2379 is on no host of the lab (hosts: "
         "192.0.2.11, 192.0.2.12); set etcd.external: true for an etcd outside the lab"),
        ("hosts: [\n", ":2: not valid YAML: expected the node content, but found '<stream end>'"),
        ("- just\n- a list\n", ":1: expected a mapping of lab fields at the top level"),
    ],
    ids=["bad-ip", "missing-name", "unknown-role", "unknown-field", "port-not-int",
         "endpoint-not-url", "missing-known-hosts", "duplicate-host", "endpoint-off-the-lab",
         "bad-yaml", "not-mapping"],
)
def test_malformed_inventory_names_file_line_and_field(
    ssh_files: Path, text: str, expected: str
) -> None:
    path = write(ssh_files, text)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert str(info.value) == f"{path}" + expected.format(dir=ssh_files)


def test_every_error_is_told_at_once(ssh_files: Path) -> None:
    text = (GOOD.replace("192.0.2.11\n", "nope\n").replace("192.0.2.12\n", "nope2\n")
            .replace("roles: [etcd, n", "roles: [etdc, n"))
    path = write(ssh_files, text)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith(f"{path}:") for line in lines), lines
    assert "hosts[0].address: expected an IP address, got 'nope'" in lines[0]
    assert any("hosts[1].address: expected an IP address, got 'nope2'" in x for x in lines)
    assert any("unknown role(s) etdc" in x for x in lines)
    assert "more error" not in str(info.value)


def test_every_cross_check_problem_is_told_at_once(ssh_files: Path) -> None:
    text = GOOD.replace("name: h2", "name: h1").replace(
        "endpoints: [https://192.0.2.11:2379]", "endpoints: [https://192.0.2.99:2379]")
    with pytest.raises(InventoryError) as info:
        load_inventory(write(ssh_files, text))
    lines = str(info.value).splitlines()
    assert len(lines) == 2, lines
    assert "duplicate host name 'h1'" in lines[0] and "192.0.2.99" in lines[1], lines


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"missing\.yaml: cannot read inventory: No such file"):
        load_inventory(tmp_path / "missing.yaml")


def test_failure_tolerance() -> None:
    lab = Lab.model_construct(hosts=[])
    assert lab.failure_tolerance == 0


def test_external_etcd_and_kubernetes_api_are_allowed_when_marked(ssh_files: Path) -> None:
    (ssh_files / "admin.kubeconfig").write_text(
        "clusters:\n- name: c\n  cluster: {server: 'https://api.example.test:6443'}\n")
    text = GOOD.replace("endpoints: [https://192.0.2.11:2379]",
                        "endpoints: [https://etcd.example.test:2379]\n  external: true")
    with pytest.raises(InventoryError, match=r":17: kubernetes\.kubeconfig: its API server "
                       r"https://api\.example\.test:6443 is on no host of the lab"):
        load_inventory(write(ssh_files, text + "kubernetes:\n  kubeconfig: admin.kubeconfig\n"))
    lab = load_inventory(write(ssh_files, text + "kubernetes:\n  kubeconfig: admin.kubeconfig\n"
                                                 "  external: true\n"))
    assert lab.etcd is not None and lab.etcd.external
