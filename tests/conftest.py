"""Shared helpers of the harness's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ssh_files(tmp_path: Path) -> Path:
    """A folder with a dummy identity file and known_hosts, as inventories refer to them."""
    (tmp_path / "id_ed25519").write_text("dummy key\n")
    (tmp_path / "known_hosts").write_text("")
    return tmp_path
