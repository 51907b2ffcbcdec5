"""pytest options of the atomic suite (load with ``-p suites.atomic.plugin`` or the root conftest).

``--allow-reboot``: the atomic suite may reboot real hosts, one at a time (a local lab's
reboots are simulated by its provisioner and always allowed).
``--atomic-refspec``: the origin refspec every atomic host must follow (default: the lab's
``ostree_refspec`` environment fact, else what most hosts follow).
"""

from __future__ import annotations

import pytest


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("stackcheck-atomic", "stackcheck atomic suite")
    group.addoption("--allow-reboot", action="store_true", default=False,
                    help="let the atomic suite reboot real hosts (one at a time); "
                         "a local lab's reboots are always allowed")
    group.addoption("--atomic-refspec", default=None, metavar="REFSPEC",
                    help="origin refspec every atomic host must follow (default: the lab's "
                         "ostree_refspec, else the one most hosts follow)")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
