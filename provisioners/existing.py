"""Adopt a lab that already runs, from an inventory file. Never destroys anything."""

from __future__ import annotations

from pathlib import Path

from stackcheck.lab import Lab, load_inventory

from .base import ProvisionConfig, Provisioner, ProvisionerError


class ExistingProvisioner(Provisioner):
    """A lab described by an inventory file; stackcheck did not create it and leaves it be."""

    name = "existing"

    def create(self, config: ProvisionConfig) -> Lab:
        if config.inventory is None:
            raise ProvisionerError(
                "the 'existing' provisioner needs an inventory: pass --inventory FILE"
            )
        lab = load_inventory(config.inventory)
        lab.run_id = config.run_id
        lab.owned = False
        return lab

    def destroy(self, lab: Lab) -> None:
        """Nothing to do: an adopted lab is never torn down."""

    def down(self, state_dir: Path, recorded: Lab | None) -> None:
        """Nothing to do: ``lab down`` never touches an adopted lab."""
