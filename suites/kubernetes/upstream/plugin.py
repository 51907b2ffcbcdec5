"""The upstream part's plugin: the groups ``--upstream-conformance=GROUP[,GROUP]`` asks for,
validated before a lab is built (the options live in ``stackcheck_fixtures.options``).
"""

from __future__ import annotations

import pytest

from .groups import GROUPS


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
