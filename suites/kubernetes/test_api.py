"""Kubernetes: the API server answers /readyz."""

import allure
import pytest

from stackcheck.lab import Lab


@allure.feature("control plane")
@allure.id("kubernetes-api-ready")
def test_api_server_is_ready(lab: Lab) -> None:
    if lab.kubernetes is None:
        pytest.skip("the lab has no Kubernetes (no kubeconfig in its inventory)")
    from kubernetes import config

    api = config.new_client_from_config(str(lab.kubernetes.kubeconfig))
    body, status, _ = api.call_api(
        "/readyz", "GET", auth_settings=["BearerToken"], response_type="str",
        _return_http_data_only=False, _request_timeout=10,
    )
    assert status == 200, f"expected /readyz to answer 200; saw {status}: {body!r}"
