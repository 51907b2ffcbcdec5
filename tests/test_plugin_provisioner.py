"""A provisioner shipped in another package: one module plus entry-point lines.

It is registered from a temporary dist-info on the path (as ``pip install`` would) and gets
what the built-in ones have: ``lab up``, ``lab down`` (after a crash too: no inventory
written), its own ``lab`` subcommand, its reboot policy and a preflight heal hook, without
the core naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackcheck.atomic.boot import reboot_policy
from stackcheck.heal import healers
from stackcheck.lab import Host, Lab, SSHAccess
from stackcheck.provisioner import owner_of

REPO = Path(__file__).resolve().parent.parent

OUTSIDE = '''
"""A provisioner that lives outside stackcheck: it logs what it is asked to do."""
import json
import os
from pathlib import Path

import click

from stackcheck.heal import Healer
from stackcheck.lab import Host, Lab, SSHAccess, write_inventory
from stackcheck.provisioner import Provisioner, ProvisionerOptions


class OutsideOptions(ProvisionerOptions):
    crash: str = ""


def _log(word):
    with open(os.environ["OUTSIDE_LOG"], "a") as log:
        log.write(word + "\\n")


class OutsideProvisioner(Provisioner):
    name = "outside"
    options_model = OutsideOptions
    simulated_reboot = "outside lab: a reboot is a restart of its processes"

    def create(self, config):
        state_dir = Path(config.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "outside-state.json").write_text(json.dumps({"run": config.run_id}))
        (state_dir / "known_hosts").touch()
        _log("create")
        lab = Lab(name="out", provisioner="outside", run_id=config.run_id, owned=True,
                  state_dir=state_dir, ssh=SSHAccess(known_hosts=state_dir / "known_hosts"),
                  hosts=[Host(name="h1", address="127.0.0.1", roles=["etcd"])])
        if config.options.get("crash") != "before-inventory":
            write_inventory(lab, state_dir / "inventory.yaml")
        return lab

    def destroy(self, lab):
        _log(f"destroy {lab.name}")
        (Path(lab.state_dir) / "outside-state.json").unlink()

    def abort(self, config):
        _log("abort")
        (Path(config.state_dir) / "outside-state.json").unlink(missing_ok=True)


def heal(lab, provisioner, root):
    _log("heal")
    return ["h1: put back"]


HEALER = Healer(heal, done="outside layer put back", failed="outside layer could not",
                errors=(RuntimeError,), order=15)


@click.command()
def hello():
    """Say hello from the outside provisioner."""
    click.echo("hello from outside")
'''


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the outside provisioner as a dist-info on the path; return its log file."""
    site = tmp_path / "site"
    dist = site / "outside_provisioner-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: outside-provisioner\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[stackcheck.provisioners]\noutside = outside_provisioner:OutsideProvisioner\n\n"
        "[stackcheck.lab_commands]\noutside-hello = outside_provisioner:hello\n\n"
        "[stackcheck.commands]\nouthello = outside_provisioner:hello\n\n"
        "[stackcheck.healers]\noutside = outside_provisioner:HEALER\n")
    (site / "outside_provisioner.py").write_text(OUTSIDE)
    log = tmp_path / "outside.log"
    log.touch()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(REPO)]))
    monkeypatch.setenv("OUTSIDE_LOG", str(log))
    monkeypatch.syspath_prepend(str(site))
    return log


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stackcheck_cli.main", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO, check=False)


def test_outside_provisioner_gets_lab_up_and_down(outside: Path, tmp_path: Path) -> None:
    lab_dir = tmp_path / "lab"
    up = _cli("lab", "up", "--provisioner", "outside", "--lab-dir", str(lab_dir))
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == str(lab_dir / "inventory.yaml")
    down = _cli("lab", "down", "--lab-dir", str(lab_dir))
    assert down.returncode == 0, down.stderr
    assert outside.read_text().split("\n")[:2] == ["create", "destroy out"]
    assert not (lab_dir / "outside-state.json").exists()


def test_outside_provisioner_is_found_after_a_crash(outside: Path, tmp_path: Path) -> None:
    """No inventory was written: the state folder itself says whose lab it is."""
    lab_dir = tmp_path / "lab"
    up = _cli("lab", "up", "--provisioner", "outside", "--lab-dir", str(lab_dir),
              "--option", "crash=before-inventory")
    assert up.returncode == 0, up.stderr
    assert not (lab_dir / "inventory.yaml").exists()
    assert owner_of(lab_dir, None).name == "outside"
    down = _cli("lab", "down", "--lab-dir", str(lab_dir))
    assert down.returncode == 0, down.stderr
    assert outside.read_text().split() == ["create", "abort"]


def test_outside_provisioner_adds_its_lab_subcommand(outside: Path) -> None:
    done = _cli("lab", "outside-hello")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello from outside"
    assert "outside-hello" in _cli("lab", "--help").stdout


def test_commands_are_mounted_from_entry_points(outside: Path) -> None:
    """``stackcheck report`` and an outside package's command come through the
    ``stackcheck.commands`` entry points: the CLI names neither."""
    done = _cli("outhello")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello from outside"
    top = _cli("--help").stdout
    assert "outhello" in top and "report" in top


def test_outside_provisioner_says_its_reboot_is_simulated(outside: Path, tmp_path: Path) -> None:
    (tmp_path / "known_hosts").touch()
    lab = Lab(provisioner="outside", ssh=SSHAccess(known_hosts=tmp_path / "known_hosts"),
              hosts=[Host(name="h1", address="127.0.0.1")])
    policy = reboot_policy(lab, allow_reboot=False)
    assert policy.allowed
    assert policy.reason == "outside lab: a reboot is a restart of its processes"


def test_a_folder_nobody_claims_goes_to_the_default_provisioner(tmp_path: Path) -> None:
    assert owner_of(tmp_path, None).name == "local"
    (tmp_path / "openstack-state.json").write_text("{}")
    assert owner_of(tmp_path, None).name == "openstack"


def test_heal_hooks_run_in_order_with_an_outside_one(outside: Path) -> None:
    assert [h.done for h in healers()] == [
        "restarted what an earlier run left stopped",  # services first (order 10)
        "outside layer put back",
        "put back on their ostree deployments",  # then hosts' deployments (order 20)
    ]
