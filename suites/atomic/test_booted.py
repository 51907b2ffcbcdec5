"""Atomic: every atomic host has an ostree sysroot with a deployment."""

import shlex

import allure
import pytest


@allure.feature("deployments")
@allure.id("atomic-has-deployment")
@pytest.mark.role("atomic")
def test_host_has_an_ostree_deployment(lab_host, host) -> None:
    sysroot = shlex.quote(lab_host.ostree_sysroot)
    result = host.run(f"ostree admin status --sysroot={sysroot}")
    assert result.rc == 0, (
        f"{lab_host.name}: expected 'ostree admin status' to succeed; "
        f"saw exit {result.rc}: {result.stderr.strip()[:300]}"
    )
    assert result.stdout.strip(), f"{lab_host.name}: expected at least one deployment; saw none"
