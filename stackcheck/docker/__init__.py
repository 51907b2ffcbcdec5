"""Docker: its description for the harness (the checks live in ``suites/docker``)."""
