"""The lab's hosts: every host answers SSH and runs a command (what every other check needs).

These checks own the cause "host unreachable": checks that need SSH to a host the preflight
could not reach are blocked with that reason; this check reports the failure itself.
"""

import allure
import pytest

from stackcheck.errors import ssh_error
from stackcheck.lab import Host, Lab
from stackcheck.ssh import reconnect

pytestmark = [allure.feature("reachability"), pytest.mark.owns("ssh")]


@allure.id("lab-host-ssh")
def test_host_answers_ssh(lab: Lab, lab_host: Host) -> None:
    """The host answers SSH within its connect timeout and runs a command."""
    access = lab.ssh_for(lab_host)
    try:
        result = reconnect(lab, lab_host).run("true")
    except Exception as exc:  # noqa: BLE001 - the failure to reach the host is the finding
        pytest.fail(f"{lab_host.name}: expected SSH as {access.user} on "
                    f"{lab_host.address}:{access.port}; {ssh_error(exc, lab_host, access)}",
                    pytrace=False)
    assert result.rc == 0, (
        f"{lab_host.name}: expected 'true' to exit 0 over SSH; it exited {result.rc}: "
        f"{(result.stderr or '').strip()[:200]}"
    )
