"""Atomic conformance checks, on every host with the ``atomic`` role.

``test_deployments``: booted into an ostree deployment, ``/usr`` read-only, the configured
origin refspec, one commit across hosts (non-disruptive). ``test_upgrade_rollback``: upgrade,
reboot, rollback, reboot, services back after each reboot, in rolling waves that keep etcd
quorum; ``test_downgrade``: an older commit is refused (disruptive, always restored). Reboots
of hosts that are not a local lab's need ``--allow-reboot``.
"""
