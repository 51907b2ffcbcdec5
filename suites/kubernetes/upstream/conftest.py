"""Fixtures of the upstream part: one parameter per requested focus group, the e2e binaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackcheck.lab import Lab
from stackcheck_builders.kubernetes import K8sBuildError
from stackcheck_builders.kubernetes.e2e import E2EBinaries, ensure_e2e
from stackcheck_builders.kubernetes.progress import Progress

from .plugin import requested_groups


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "upstream_group_name" in metafunc.fixturenames:
        names = requested_groups(metafunc.config)
        metafunc.parametrize("upstream_group_name", names or [None],
                             ids=names or ["not-requested"])


@pytest.fixture(scope="session")
def e2e_binaries(request: pytest.FixtureRequest, lab: Lab) -> E2EBinaries | None:
    """e2e.test (--e2e-bin, else the cache; the first use builds it, about 3 minutes), or None
    when no group is requested. Session scope: built before a check takes the lab lock."""
    if not requested_groups(request.config):
        return None
    if lab.kubernetes is None:
        pytest.skip("the lab has no Kubernetes (no kubeconfig in its inventory)")
    given = request.config.getoption("--e2e-bin", default=None)
    try:
        return ensure_e2e(e2e_bin=Path(given) if given else None, progress=Progress.quiet())
    except K8sBuildError as exc:
        pytest.fail(f"no e2e.test to run: {exc}", pytrace=False)
