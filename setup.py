"""Packaging: the repository's top-level folders install under stackcheck-prefixed import
names (``fixtures/`` is ``stackcheck_fixtures``), so stackcheck can share an environment with
packages named ``fixtures`` or ``reports``. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

#: import name -> the folder that holds it
FOLDERS = {f"stackcheck_{folder}": folder
           for folder in ("fixtures", "reports", "provisioners", "suites", "builders", "cli")}


def packages() -> list[str]:
    found = find_packages(include=["stackcheck", "stackcheck.*"])
    for name, folder in FOLDERS.items():
        found += [name, *(f"{name}.{sub}" for sub in find_packages(folder))]
    return found


setup(packages=packages(), package_dir=FOLDERS)
