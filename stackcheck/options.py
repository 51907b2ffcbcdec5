"""Every pytest option of stackcheck, in one early plugin.

Registered through the ``pytest11`` entry point, so pytest knows the options before it
picks the rootdir: ``--inventory /path/lab.yaml`` (with a space) is read as an option and
its value, not as a test path. The root conftest lists this module too, for a source tree
used without ``pip install`` (then give the options as ``--opt=value``).
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    lab = parser.getgroup("stackcheck", "stackcheck lab")
    lab.addoption("--provisioner", help="provisioner name (default: local, or existing "
                  "when --inventory is given)")
    lab.addoption("--inventory", type=Path, help="inventory YAML of a lab that already runs")
    lab.addoption("--lab-hosts", type=int, default=3, help="hosts of a provisioned lab")
    lab.addoption("--lab-dir", type=Path, help="state folder of a provisioned lab "
                  "(default: .stackcheck/lab in the rootdir)")
    lab.addoption("--lab-option", action="append", default=[], metavar="KEY=VALUE",
                  help="provisioner-specific option, repeatable")
    lab.addoption("--keep-lab", action="store_true", help="leave a provisioned lab running")

    reports = parser.getgroup("stackcheck-reports", "stackcheck reports")
    reports.addoption("--waivers", type=Path, metavar="FILE",
                      help="YAML of known failures (test, reason, owner/ticket, expires)")
    reports.addoption("--history-dir", type=Path, metavar="DIR",
                      help="results store (default: .stackcheck/history in the rootdir)")
    reports.addoption("--no-history", action="store_true", help="do not keep this run")
    reports.addoption("--no-must-gather", action="store_true",
                      help="attach no host bundle to failed checks")

    disruptive = parser.getgroup("stackcheck-disruptive", "stackcheck disruptive checks")
    disruptive.addoption("--serial-disruptive", action="store_true", default=False,
                         help="every disruptive check alone under one lab lock, one host at "
                              "a time (the behaviour before claims and rolling waves)")
    disruptive.addoption("--max-disrupted", type=int, default=None, metavar="N",
                         help="at most N hosts in one rolling wave (default: as many as the "
                              "layers' quorum allows)")
    disruptive.addoption("--disruptive-sample", action="store_true", default=False,
                         help="per-host disruptive checks on a sample: one host per role and "
                              "rack plus a rotating set drawn from the run id")
    disruptive.addoption("--full-matrix", action="store_true", default=False,
                         help="the all-pairs checks probe every pair, also above the host "
                              "count where they sample")

    atomic = parser.getgroup("stackcheck-atomic", "stackcheck atomic suite")
    atomic.addoption("--allow-reboot", action="store_true", default=False,
                     help="let the atomic suite reboot real hosts (one at a time); "
                          "a local lab's reboots are always allowed")
    atomic.addoption("--atomic-refspec", default=None, metavar="REFSPEC",
                     help="origin every atomic host must follow: an ostree refspec or a "
                          "container image reference (default: the lab's ostree_refspec, else "
                          "the one most hosts follow)")
    atomic.addoption("--atomic-bypass-driver", action="store_true", default=False,
                     help="let the disruptive atomic checks upgrade and roll back hosts whose "
                          "updates an agent drives (Zincati: rpm-ostree --bypass-driver)")

    upstream = parser.getgroup("stackcheck-upstream", "upstream Kubernetes e2e conformance")
    upstream.addoption("--upstream-conformance", metavar="GROUPS", default="",
                       help="run upstream e2e.test focus groups, comma-separated: "
                            "scheduling|node|conformance (opt-in; each group is one "
                            "disruptive check)")
    upstream.addoption("--e2e-bin", metavar="PATH", default=None,
                       help="e2e.test to run (default: built once from the lab's Kubernetes "
                            "source)")
    upstream.addoption("--upstream-unlisted", action="store_true", default=False,
                       help="also run specs outside a group's curated offline list (for "
                            "clusters that can pull upstream's test images)")
