"""The create() skeleton both labs on this machine use: reuse, failure policy, one error."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackcheck.lab import Host, Lab, SSHAccess, write_inventory
from stackcheck_provisioners.base import ProvisionConfig, ProvisionerError
from stackcheck_provisioners.hostlab import state
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.hostlab.lifecycle import HostLabProvisioner, LabKind, create_lab
from stackcheck_provisioners.hostlab.options import HostLabOptions
from stackcheck_provisioners.hostlab.progress import Progress

# no kernel object is made: the name and subnet only keep clear of other labs (h5's range)
OPTIONS = {"name": "k9unit", "subnet": "10.235.9.0/24"}


def _setup(tmp_path: Path, **options: str) -> tuple[HostLabOptions, Layout, list[str]]:
    sd = tmp_path / "lab"
    config = ProvisionConfig(run_id="r1", state_dir=sd, hosts=1,
                             options={**OPTIONS, **options})
    parsed = HostLabOptions.model_validate(config.options)
    return parsed, Layout.from_options(sd, config.run_id, 1, parsed), []


def _kind(seen: list[str], healthy: bool = False) -> LabKind:
    return LabKind(name="local", noun="hosts", healthy=lambda sd: healthy,
                   before_teardown=lambda sd: seen.append("before_teardown"))


def _lab(layout: Layout) -> Lab:
    (layout.state_dir / "known_hosts").touch()
    return Lab(name=layout.name, provisioner="local", run_id=layout.run_id, owned=True,
               ssh=SSHAccess(known_hosts=layout.state_dir / "known_hosts"),
               hosts=[Host(name="h1", address="10.235.9.2", roles=["etcd"])])


def test_a_failed_build_is_torn_down_and_named_in_one_error(tmp_path: Path) -> None:
    options, layout, seen = _setup(tmp_path)

    def build() -> Lab:
        assert state.read(layout.state_dir)["provisioner"] == "local"
        raise KeyError("etcd_version")

    with pytest.raises(ProvisionerError) as failed:
        create_lab(_kind(seen), options, layout, layout.options(), Progress("t"), build)
    assert str(failed.value) == "local lab bring-up failed: KeyError: 'etcd_version'"
    assert seen == ["before_teardown"]
    assert not layout.state_dir.exists(), "the folder the bring-up made is removed"


def test_keep_on_failure_keeps_what_the_build_recorded(tmp_path: Path) -> None:
    options, layout, seen = _setup(tmp_path, keep_on_failure="yes")

    def build() -> Lab:
        raise ProvisionerError("etcd cluster not ready after 30s")

    with pytest.raises(ProvisionerError, match=r"^etcd cluster not ready after 30s$"):
        create_lab(_kind(seen), options, layout, layout.options(), Progress("t"), build)
    assert seen == []
    assert state.read(layout.state_dir)["status"] == "building"


def test_a_healthy_lab_with_the_same_options_is_reused(tmp_path: Path) -> None:
    options, layout, seen = _setup(tmp_path)
    lab = create_lab(_kind(seen), options, layout, layout.options(), Progress("t"),
                     lambda: _lab(layout))
    write_inventory(lab, layout.inventory)

    def build_again() -> Lab:
        raise AssertionError("a healthy lab is not built again")

    again = create_lab(_kind(seen, healthy=True), options, layout, layout.options(),
                       Progress("t"), build_again)
    assert again.owned is False and [h.name for h in again.hosts] == ["h1"]
    assert seen == []


def test_a_lab_with_other_options_is_torn_down_first(tmp_path: Path) -> None:
    options, layout, seen = _setup(tmp_path)
    create_lab(_kind(seen), options, layout, layout.options(), Progress("t"),
               lambda: _lab(layout))
    create_lab(_kind(seen, healthy=True), options, layout, {**layout.options(), "docker": False},
               Progress("t"), lambda: _lab(layout))
    assert seen == ["before_teardown"]
    assert state.read(layout.state_dir)["config"]["docker"] is False


def test_abort_and_down_remove_the_recorded_lab_and_the_folder_it_made(tmp_path: Path) -> None:
    options, layout, seen = _setup(tmp_path)
    create_lab(_kind(seen), options, layout, layout.options(), Progress("t"),
               lambda: _lab(layout))

    class Kit(HostLabProvisioner):
        name = "kit"
        kind = _kind(seen)

        def create(self, config: ProvisionConfig) -> Lab:
            raise AssertionError("not built here")

    (layout.state_dir / "known_hosts").unlink()  # _lab's, not recorded: it would stay
    Kit().down(layout.state_dir, None)
    assert seen == ["before_teardown"]
    assert not layout.state_dir.exists(), "the folder create_lab made is removed"
    Kit().abort(ProvisionConfig(run_id="again", state_dir=layout.state_dir))  # nothing left
    assert seen == ["before_teardown"]
