"""The provisioner contract's plain types, without pydantic: a host-side control CLI (the
local lab's, run over SSH for every service stop, start and reboot) imports them in
milliseconds. :mod:`stackcheck.provisioner` re-exports them."""

from __future__ import annotations

from dataclasses import dataclass


class ProvisionerError(RuntimeError):
    """A provisioner could not do what was asked; the message is for an operator."""


@dataclass
class ServiceResult:
    host: str
    command: str
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0
