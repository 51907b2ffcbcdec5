"""Runtime detection and its parsers, on recorded real output (no lab).

Provenance of tests/data/runtime/:
- ctr-version-1.6.20.txt, ctr-version-down.txt: ``ctr --address SOCK version`` of Debian 12's
  containerd 1.6.20~ds1-1+deb12u3, recorded on this project's machine against a local-lab
  host's containerd, and against a socket where none listens (stderr appended).
- containerd-config-default-1.6.20.toml: ``containerd config default`` of the same package.
- containerd-config-local-lab.toml, local-lab-10-flannel.conflist: what a ``runtime=containerd``
  local lab's containerd 1.6.20 ran with (state dir replaced by /srv/lab).
- kube-flannel-v0.11.0-cni-conf.json: ``cni-conf.json`` of flannel's
  Documentation/kube-flannel.yml (flannel-io/flannel, flannel v0.11.0 images, commit 0106d23).
- kubelet-cmdline-containerd.txt: ``/proc/PID/cmdline`` (NULs as newlines) of a kubelet v1.20.2
  on a ``runtime=containerd`` local-lab host (state dir replaced by /srv/lab).
- rke2-v1.33.7-kubelet-00-rke2-defaults.conf: RKE2 v1.33.7+rke2r3's kubelet config drop-in
  ``/var/lib/rancher/rke2/agent/etc/kubelet.conf.d/00-rke2-defaults.conf`` as printed on a node.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackcheck.runtime import detect, probe
from stackcheck.runtime.detect import UNKNOWN, docker_checks_skip, read_cni
from stackcheck.runtime.parse import (
    ctr_server_version,
    flag_values,
    kubelet_runtime,
    parse_cni,
    parse_containerd_config,
    pick_cni_file,
    socket_of,
    split_cmdline,
)
from stackcheck.services import UnitState, parse_show

DATA = Path(__file__).parent / "data" / "runtime"


def data(name: str) -> str:
    return (DATA / name).read_text()


# --- parsers ------------------------------------------------------------------------------

def test_ctr_version_gives_the_server_version_and_none_without_a_server() -> None:
    assert ctr_server_version(data("ctr-version-1.6.20.txt")) == "1.6.20~ds1"
    assert ctr_server_version(data("ctr-version-down.txt")) is None


def test_containerd_default_config() -> None:
    config = parse_containerd_config(data("containerd-config-default-1.6.20.toml"))
    assert config.address == "/run/containerd/containerd.sock"
    assert config.cri and config.sandbox_image == "registry.k8s.io/pause:3.6"
    assert (config.cni_conf_dir, config.cni_bin_dir) == ("/etc/cni/net.d", "/opt/cni/bin")
    assert config.runc_binary is None and not config.systemd_cgroup


def test_containerd_local_lab_config() -> None:
    config = parse_containerd_config(data("containerd-config-local-lab.toml"))
    assert config.runc_binary == "/srv/lab/hosts/h1/k8s/runc-wrapper"
    assert config.cni_conf_dir == "/srv/lab/hosts/h1/containerd/cni/net.d"
    assert config.cni_bin_dir == "/usr/lib/cni"
    assert config.sandbox_image == "docker.io/stackcheck/pause:3.2"


def test_containerd_config_errors_name_the_file() -> None:
    with pytest.raises(ValueError, match=r"/etc/containerd/config\.toml: not TOML"):
        parse_containerd_config("version = [")


def test_flannel_cni_config_delegates_to_a_bridge_from_subnet_env() -> None:
    net = parse_cni(data("kube-flannel-v0.11.0-cni-conf.json"),
                    "/etc/cni/net.d/10-flannel.conflist")
    assert net.flannel and net.bridge == "cni0" and net.name == "cbr0"
    assert net.mtu is None and net.subnet is None  # both come from /run/flannel/subnet.env
    assert net.types == ["flannel", "portmap"]


def test_bridge_cni_config_gives_bridge_mtu_and_subnet() -> None:
    net = parse_cni(data("local-lab-10-flannel.conflist"), "10-flannel.conflist")
    assert (net.bridge, net.mtu, net.flannel) == ("cni0", 1450, False)
    assert net.subnet == ipaddress.ip_network("10.244.2.0/24")


def test_cni_errors_name_the_file_and_field() -> None:
    with pytest.raises(ValueError, match=r"x\.conflist: not JSON"):
        parse_cni("{", "x.conflist")
    with pytest.raises(ValueError, match=r"x\.conflist: field plugins"):
        parse_cni('{"name": "n", "plugins": []}', "x.conflist")
    with pytest.raises(ValueError, match="ipam subnet 'ten' is not a network"):
        parse_cni('{"type": "bridge", "ipam": {"subnet": "ten"}}', "x.conf")


def test_cni_file_is_the_first_in_lexical_order() -> None:
    assert pick_cni_file(["99-loopback.conf", "10-flannel.conflist", "README"]) == \
        "10-flannel.conflist"
    assert pick_cni_file(["README"]) is None


def test_kubelet_on_containerd_from_its_recorded_flags() -> None:
    argv = split_cmdline(data("kubelet-cmdline-containerd.txt"))
    found = kubelet_runtime(argv)
    assert (found.runtime, found.socket) == ("containerd", "/run/containerd/containerd.sock")
    assert found.source == "--container-runtime-endpoint"


def test_kubelet_config_file_names_the_endpoint() -> None:
    argv = ["kubelet", "--config=/var/lib/rancher/rke2/agent/etc/kubelet.conf.d"]
    found = kubelet_runtime(argv, data("rke2-v1.33.7-kubelet-00-rke2-defaults.conf"))
    assert (found.runtime, found.socket) == ("containerd",
                                             "/run/k3s/containerd/containerd.sock")
    assert "containerRuntimeEndpoint" in found.source


def test_kubelet_without_runtime_flags_depends_on_its_version() -> None:
    assert kubelet_runtime(["kubelet"], version=(1, 20)).runtime == "docker"
    modern = kubelet_runtime(["kubelet"], version=(1, 27))
    assert (modern.runtime, modern.socket) == ("containerd", "/run/containerd/containerd.sock")
    shim = kubelet_runtime(["kubelet", "--container-runtime=docker",
                            "--docker-endpoint=unix:///var/run/docker.sock"])
    assert (shim.runtime, shim.socket) == ("docker", "/run/docker.sock")
    crio = kubelet_runtime(["kubelet", "--container-runtime=remote",
                            "--container-runtime-endpoint", "unix:///var/run/crio/crio.sock"])
    assert (crio.runtime, crio.socket) == ("cri-o", "/run/crio/crio.sock")


def test_flags_and_sockets() -> None:
    assert flag_values(["--a=1", "--b", "2", "--c", "--d=x=y"]) == {
        "a": "1", "b": "2", "c": "true", "d": "x=y"}
    assert socket_of("unix:///var/run/docker.sock") == "/run/docker.sock"


# --- detection, replaying what hosts said ------------------------------------------------

@dataclass
class Said:
    rc: int
    stdout: str = ""
    stderr: str = ""


class Replay:
    """A host that answers commands from recorded output (first matching fragment wins)."""

    def __init__(self, answers: dict[str, Said]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def run(self, command: str, *args) -> Said:
        self.asked.append(command)
        for fragment, said in self.answers.items():
            if fragment in command:
                return said
        return Said(1, "", "not found")


def _kubelet() -> Said:
    return Said(0, data("kubelet-cmdline-containerd.txt").replace("\0", "\n"))


def _containerd_host(**override: Said) -> Replay:
    answers = {
        "pgrep -x kubelet": _kubelet(),
        "pgrep -x containerd": Said(0, "containerd\n--config\n/srv/lab/hosts/h1/containerd/"
                                       "config.toml\n"),
        "cat /srv/lab/hosts/h1/containerd/config.toml":
            Said(0, data("containerd-config-local-lab.toml")),
        "test -S": Said(0),
        "command -v crictl": Said(1),
        "ctr --address": Said(0, data("ctr-version-1.6.20.txt")),
        "ls -1 /srv/lab/hosts/h1/containerd/cni/net.d": Said(0, "10-flannel.conflist\n"),
        "cat /srv/lab/hosts/h1/containerd/cni/net.d/10-flannel.conflist":
            Said(0, data("local-lab-10-flannel.conflist")),
    }
    answers.update(override)
    return Replay(answers)


def test_detects_containerd_that_answers_with_its_cni_network() -> None:
    host = _containerd_host()
    found = detect(host, ["docker", "node", "flannel"])
    assert (found.kind, found.answers, found.version) == ("containerd", True, "1.6.20~ds1")
    assert found.socket == found.kubelet.socket == "/run/containerd/containerd.sock"
    assert found.containerd and found.containerd.runc_binary.endswith("runc-wrapper")
    assert "docker role" in found.role_note(["docker"]) or "'docker' role" in \
        found.role_note(["docker"])
    assert not any("docker info" in c for c in host.asked)  # the kubelet said: no Docker probe
    network = read_cni(host, found)
    assert network and network.bridge == "cni0" and network.mtu == 1450


def test_stopped_containerd_is_named_with_the_hosts_own_word() -> None:
    host = _containerd_host(**{"pgrep -x containerd": Said(1), "test -S": Said(1)})
    found = detect(host, ["docker", "node"])
    assert (found.kind, found.answers) == ("containerd", False)
    assert found.summary == ("containerd does not answer on /run/containerd/containerd.sock "
                             "(test -S /run/containerd/containerd.sock): no socket at "
                             "/run/containerd/containerd.sock (is containerd running?)")
    assert probe(host, ["node"])[0] is False


def test_refused_socket_says_what_ctr_said() -> None:
    host = _containerd_host(**{"ctr --address": Said(1, "", data("ctr-version-down.txt"))})
    found = detect(host, ["node"])
    assert not found.answers and found.said.startswith("ctr: failed to dial")


def test_docker_host_without_kubelet() -> None:
    host = Replay({"docker -H unix:///run/docker.sock info": Said(0, "20.10.24+dfsg1\n")})
    found = detect(host, ["docker"])
    assert (found.kind, found.answers, found.variant) == ("docker", True, "docker 20.10.24+dfsg1")
    assert found.role_note(["docker"]) is None and found.cni_conf_dir is None


def test_stopped_docker_on_a_docker_host_is_still_docker() -> None:
    host = Replay({"docker -H": Said(1, "", "Cannot connect to the Docker daemon at "
                                           "unix:///run/docker.sock. Is the docker daemon "
                                           "running?"),
                   # Docker's own containerd (Docker's packaged config disables CRI)
                   "pgrep -x containerd": Said(0, "containerd\n--config\n/etc/containerd/"
                                                  "config.toml\n"),
                   "cat /etc/containerd/config.toml": Said(0, 'disabled_plugins = ["cri"]\n')})
    found = detect(host, ["docker"])
    assert (found.kind, found.answers) == ("docker", False)
    assert "Is the docker daemon running?" in found.summary


def test_containerd_with_cri_and_no_kubelet_is_containerd_even_with_a_docker_role() -> None:
    host = _containerd_host(**{"pgrep -x kubelet": Said(1), "docker -H": Said(1, "", "no")})
    found = detect(host, ["docker"])
    assert (found.kind, found.answers) == ("containerd", True)
    assert found.role_note(["docker"])


def _docker_unit(text: str) -> UnitState:
    return parse_show("docker", "docker.service", text)


#: ``systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState,StateChangeTimestamp``
#: as systemd 252 (Debian 12, the machines lab) prints it for Debian's docker.io package's
#: docker.service: enabled and stopped (``systemctl stop docker.socket docker``), and on a
#: host without the package (systemd leaves UnitFileState empty for a unit it cannot find)
DOCKER_STOPPED_SHOW = ("Id=docker.service\nLoadState=loaded\nActiveState=inactive\n"
                       "SubState=dead\nUnitFileState=enabled\n"
                       "StateChangeTimestamp=Thu 2026-12-03 13:40:02 UTC\n")
DOCKER_ABSENT_SHOW = ("Id=docker.service\nLoadState=not-found\nActiveState=inactive\n"
                      "SubState=dead\nUnitFileState=\nStateChangeTimestamp=\n")
#: provisioners/local/control.py ``unit_status`` for a service the host does not run (the
#: local lab with ``runtime=containerd`` runs no dockerd)
LOCAL_LAB_NO_DOCKER_SHOW = "Id=docker\nLoadState=not-found\nActiveState=inactive\n"


def test_docker_checks_run_where_the_service_manager_runs_docker_beside_containerd() -> None:
    on_containerd = detect(_containerd_host(), ["docker", "node"])
    # a stopped but enabled docker.service beside a kubelet on containerd: Docker is run here
    assert docker_checks_skip("h2", on_containerd, _docker_unit(DOCKER_STOPPED_SHOW)) is None
    running = DOCKER_STOPPED_SHOW.replace("ActiveState=inactive", "ActiveState=active")
    assert docker_checks_skip("h2", on_containerd, _docker_unit(
        running.replace("UnitFileState=enabled", "UnitFileState=disabled"))) is None
    failed = DOCKER_STOPPED_SHOW.replace("ActiveState=inactive", "ActiveState=failed")
    assert docker_checks_skip("h2", on_containerd, _docker_unit(
        failed.replace("UnitFileState=enabled", "UnitFileState=disabled"))) is None
    # Docker the runtime (or none found): always, whatever the unit says
    docker = detect(Replay({"docker -H unix:///run/docker.sock info": Said(0, "20.10.24\n")}),
                    ["docker"])
    assert docker_checks_skip("h1", docker, _docker_unit(DOCKER_ABSENT_SHOW)) is None
    assert docker_checks_skip("h1", detect(Replay({}), ["docker"]), None) is None


def test_docker_checks_skip_with_the_hosts_word_where_docker_is_not_run() -> None:
    on_containerd = detect(_containerd_host(), ["docker", "node"])
    assert docker_checks_skip("h1", on_containerd, _docker_unit(LOCAL_LAB_NO_DOCKER_SHOW)) == (
        "h1 runs containerd 1.6.20~ds1, not Docker (docker absent): Docker's own checks do "
        "not apply (the runtime suite checks it)")
    assert "(docker.service absent)" in docker_checks_skip(
        "h1", on_containerd, _docker_unit(DOCKER_ABSENT_SHOW))
    masked = DOCKER_STOPPED_SHOW.replace("LoadState=loaded", "LoadState=masked").replace(
        "UnitFileState=enabled", "UnitFileState=masked")
    assert "(docker.service masked since 2026-12-03 13:40:02 UTC, masked)" in \
        docker_checks_skip("h1", on_containerd, _docker_unit(masked))
    disabled = DOCKER_STOPPED_SHOW.replace("UnitFileState=enabled", "UnitFileState=disabled")
    assert "(docker.service inactive since 2026-12-03 13:40:02 UTC, disabled)" in \
        docker_checks_skip("h1", on_containerd, _docker_unit(disabled))
    assert "cannot say whether it runs Docker" in docker_checks_skip("h1", on_containerd, None)


def test_nothing_found() -> None:
    found = detect(Replay({}), ["etcd"])
    assert found.kind == UNKNOWN and not found.answers
    assert "no container runtime found" in found.summary


# --- the report and the local lab's runtime option (no root) -------------------------------

def test_report_environment_lists_each_hosts_runtime(tmp_path: Path) -> None:
    from stackcheck_reports.allure_env import runtime_facts

    (tmp_path / "h1").write_text("containerd 1.6.20~ds1, answers (inventory role docker)\n")
    (tmp_path / "h2").write_text("containerd, does not answer (inventory role docker)\n")
    assert runtime_facts(tmp_path) == {
        "runtime.h1": "containerd 1.6.20~ds1, answers (inventory role docker)",
        "runtime.h2": "containerd, does not answer (inventory role docker)"}
    assert runtime_facts(tmp_path / "absent") == {}


def test_local_lab_runtime_option(tmp_path: Path) -> None:
    from stackcheck_provisioners.base import ProvisionConfig, ProvisionerError
    from stackcheck_provisioners.hostlab import kubelet
    from stackcheck_provisioners.hostlab.layout import Layout
    from stackcheck_provisioners.local.provisioner import LocalProvisioner, layout_for

    default = layout_for(ProvisionConfig("r", tmp_path, hosts=2))
    assert (default.runtime, default.docker) == ("docker", True)
    lab = layout_for(ProvisionConfig("r", tmp_path, hosts=2, options={"runtime": "containerd"}))
    assert (lab.runtime, lab.docker) == ("containerd", False)
    assert Layout.recorded(tmp_path, "r", lab.options()) == lab
    with pytest.raises(ProvisionerError, match="option runtime='cri-o': Input should be "
                       "'docker' or 'containerd'"):
        LocalProvisioner.parse_options({"runtime": "cri-o"})
    with pytest.raises(ProvisionerError, match="option runtime='containerd': needs "
                       "kubernetes=true"):
        LocalProvisioner.parse_options({"runtime": "containerd", "kubernetes": "no"})
    flags = kubelet.runtime_flags(lab, lab.hosts[0])
    assert "--container-runtime=remote" in flags
    assert "--container-runtime-endpoint=unix:///run/containerd/containerd.sock" in flags
    assert not any(f.startswith(("--docker", "--network-plugin")) for f in flags)
    assert "--container-runtime=docker" in kubelet.runtime_flags(default, default.hosts[0])


def test_local_lab_containerd_config_and_cni_parse_as_the_checks_read_them(
        tmp_path: Path) -> None:
    from stackcheck_provisioners.base import ProvisionConfig
    from stackcheck_provisioners.hostlab import containerd, kubelet
    from stackcheck_provisioners.local.provisioner import layout_for

    lab = layout_for(ProvisionConfig("r", tmp_path / "lab", hosts=2,
                                     options={"runtime": "containerd"}))
    host = lab.hosts[1]
    host.dir.mkdir(parents=True)
    kubelet.prepare(lab, host)
    config = parse_containerd_config(containerd.config_path(host).read_text())
    assert config.runc_binary == str(host.dir / "k8s" / "runc-wrapper")
    assert config.cni_conf_dir == str(containerd.cni_conf_dir(host))
    conf = next(containerd.cni_conf_dir(host).iterdir())
    net = parse_cni(conf.read_text(), str(conf))
    assert (net.bridge, net.mtu, str(net.subnet)) == ("cni0", 1450, host.flannel_subnet)


def test_image_archive_is_docker_save_format(tmp_path: Path) -> None:
    import json
    import tarfile

    from stackcheck_provisioners.hostlab.k8s_images import image_archive

    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add(__file__, arcname="pause")
    out = image_archive(tmp_path / "img.tar", rootfs, ["stackcheck/pause:3.2"],
                        {"Entrypoint": ["/pause"]})
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config = json.load(tar.extractfile(manifest[0]["Config"]))
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()
    assert manifest[0]["RepoTags"] == ["stackcheck/pause:3.2"]
    assert config["config"] == {"Entrypoint": ["/pause"]} and config["os"] == "linux"
    assert layer == rootfs.read_bytes()
