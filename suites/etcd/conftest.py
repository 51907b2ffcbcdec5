"""Fixtures of the etcd suite."""

from __future__ import annotations

import pytest

from stackcheck.etcd.cluster import Member, members
from stackcheck.lab import Lab


@pytest.fixture(scope="session")
def cluster(lab: Lab) -> list[Member]:
    """The etcd members of the lab (skips the layer when the lab has none)."""
    if lab.etcd is None:
        pytest.skip("the lab has no etcd endpoints in its inventory")
    return members(lab)
