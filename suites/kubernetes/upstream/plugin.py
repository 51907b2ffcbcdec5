"""pytest options of the upstream part: ``--upstream-conformance=GROUP[,GROUP]`` (opt-in),
``--e2e-bin=PATH`` (an e2e.test matching the cluster's version, instead of the cached build),
``--upstream-unlisted`` (also run specs outside the curated offline lists).

Loaded as a plugin by the root conftest (pytest reads options only from initial conftests).
"""

from __future__ import annotations

import pytest

from suites.kubernetes.upstream.groups import GROUPS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stackcheck-upstream", "upstream Kubernetes e2e conformance")
    group.addoption("--upstream-conformance", metavar="GROUPS", default="",
                    help=f"run upstream e2e.test focus groups, comma-separated: "
                         f"{'|'.join(GROUPS)} (opt-in; each group is one disruptive check)")
    group.addoption("--e2e-bin", metavar="PATH", default=None,
                    help="e2e.test to run (default: built once from the lab's Kubernetes source)")
    group.addoption("--upstream-unlisted", action="store_true", default=False,
                    help="also run specs outside a group's curated offline list (for clusters "
                         "that can pull upstream's test images)")


def requested_groups(config: pytest.Config) -> list[str]:
    """The groups asked for, validated (a UsageError names the unknown ones)."""
    value = config.getoption("--upstream-conformance", default="") or ""
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise pytest.UsageError(f"--upstream-conformance: unknown group(s) {', '.join(unknown)}; "
                                f"expected some of {', '.join(GROUPS)}")
    return list(dict.fromkeys(names))


def pytest_configure(config: pytest.Config) -> None:
    requested_groups(config)  # fail fast on a typo, before a lab is built
