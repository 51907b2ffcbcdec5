"""etcd: every endpoint answers and reports a leader."""

import allure
import pytest

from stackcheck.etcd import client_for
from stackcheck.lab import Lab


@allure.feature("health")
@allure.id("etcd-health-endpoints")
def test_every_endpoint_is_healthy(lab: Lab) -> None:
    if lab.etcd is None:
        pytest.skip("the lab has no etcd endpoints in its inventory")
    unhealthy = {}
    for endpoint in lab.etcd.endpoints:
        try:
            status = client_for(lab.etcd, endpoint).status()
            if not status.get("leader"):
                unhealthy[endpoint] = "no leader"
        except Exception as exc:  # noqa: BLE001 - reported per endpoint
            unhealthy[endpoint] = f"{type(exc).__name__}: {exc}"
    assert not unhealthy, f"expected every endpoint healthy with a leader; saw {unhealthy}"
