"""Root conftest: loads stackcheck's fixture plugins for the conformance suites."""

pytest_plugins = [
    "fixtures.lab",
    "fixtures.hosts",
    "fixtures.etcd",
    "fixtures.faults",
    "fixtures.flannel",
    "fixtures.kubernetes",
    "fixtures.pods",
    "fixtures.labels",
    "fixtures.timing",
    "suites.atomic.plugin",
    "suites.kubernetes.upstream.plugin",
    "reports.plugin",
]


def pytest_ignore_collect(collection_path, config):
    """The harness's own tests run with their own command (see README), never with the suites."""
    if collection_path.name == "tests" and collection_path.parent == config.rootpath:
        return True
    return None
