"""Root conftest: loads stackcheck's fixture plugins for the conformance suites."""

from pathlib import Path

import pytest

pytest_plugins = [
    "stackcheck_fixtures.options",  # also the pytest11 entry point; here for an uninstalled tree
    "stackcheck_fixtures.lab",
    "stackcheck_fixtures.claims",
    "stackcheck_fixtures.preflight",
    "stackcheck_fixtures.hosts",
    "stackcheck_fixtures.etcd",
    "stackcheck_fixtures.interrupt",  # before fixtures.faults, which imports it
    "stackcheck_fixtures.faults",
    "stackcheck_fixtures.flannel",
    "stackcheck_fixtures.kubernetes",
    "stackcheck_fixtures.pods",
    "stackcheck_fixtures.runtime",
    "stackcheck_fixtures.labels",
    "stackcheck_fixtures.timing",
    "stackcheck_suites.kubernetes.upstream.plugin",
    "stackcheck_reports.plugin",
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
