"""The trivial check of benchmark 4 (``benchmarks/per_check.py``), run through the harness.

A file exists on every host, ``BENCH_CHECK_REPEAT`` times per host (default 1). Never
collected with the suites (it lives outside ``suites/``).
"""

import os

import allure
import pytest

REPEAT = int(os.environ.get("BENCH_CHECK_REPEAT", "1"))
PATH = "/etc/os-release"


@allure.id("bench-trivial-file-exists")
@pytest.mark.parametrize("rep", range(REPEAT))
def test_file_exists(lab_host, host, rep: int) -> None:
    assert host.file(PATH).exists, f"{lab_host.name}: expected {PATH}; it is missing"
