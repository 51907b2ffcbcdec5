"""flannel: every flannel host has its subnet file and its vxlan device."""

import allure
import pytest


@allure.feature("host plumbing")
@allure.id("flannel-subnet-env-present")
@pytest.mark.role("flannel")
def test_subnet_env_and_vxlan_device_exist(lab_host, host) -> None:
    env = host.file("/run/flannel/subnet.env")
    assert env.exists, f"{lab_host.name}: expected /run/flannel/subnet.env; it is missing"
    assert "FLANNEL_SUBNET=" in env.content_string, (
        f"{lab_host.name}: /run/flannel/subnet.env has no FLANNEL_SUBNET; "
        f"saw {env.content_string[:200]!r}"
    )
    link = host.run("ip -d link show flannel.1")
    assert link.rc == 0, f"{lab_host.name}: expected a flannel.1 device; ip said {link.stderr!r}"
