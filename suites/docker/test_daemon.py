"""Docker: the daemon answers on every docker host."""

import allure
import pytest


@allure.feature("daemon")
@allure.id("docker-daemon-answers")
@pytest.mark.role("docker")
def test_daemon_answers(lab_host, host) -> None:
    result = host.run("docker info --format '{{.ServerVersion}}'")
    assert result.rc == 0 and result.stdout.strip(), (
        f"{lab_host.name}: expected the Docker daemon to answer 'docker info'; "
        f"saw exit {result.rc}: {result.stderr.strip()[:300]}"
    )
