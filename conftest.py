"""Root conftest: loads stackcheck's fixture plugins for the conformance suites."""

from pathlib import Path

import pytest

pytest_plugins = [
    "fixtures.options",  # also the pytest11 entry point; here for an uninstalled tree
    "fixtures.lab",
    "fixtures.claims",
    "fixtures.preflight",
    "fixtures.hosts",
    "fixtures.etcd",
    "fixtures.interrupt",  # before fixtures.faults, which imports it
    "fixtures.faults",
    "fixtures.flannel",
    "fixtures.kubernetes",
    "fixtures.pods",
    "fixtures.runtime",
    "fixtures.labels",
    "fixtures.timing",
    "suites.kubernetes.upstream.plugin",
    "reports.plugin",
]


HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a rootdir other than the project: pytest picked it from a misread option value.

    pytest picks its rootdir and ini file before plugins add their options, so the value in
    ``--inventory /elsewhere/lab.yaml`` looks like a test path to it.
    """
    if config.rootpath.resolve() != HERE or config.inipath is None:
        raise pytest.UsageError(
            f"pytest chose {config.rootpath} as its rootdir (ini file: {config.inipath}) instead "
            f"of the stackcheck project {HERE}: it read an option's value given after a space as "
            f"a test path. Write stackcheck's options with '=' (--inventory=/path/lab.yaml), or "
            f"add -c {HERE / 'pyproject.toml'}."
        )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The harness's own tests run with their own command (see README), never with the suites."""
    if collection_path.resolve() == HERE / "tests":
        return True
    return None
