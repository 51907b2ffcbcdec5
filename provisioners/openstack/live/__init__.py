"""A real single-node OpenStack (Debian's Zed packages, nova's fake virt driver) for tests.

``python -m stackcheck_provisioners.openstack.live up|down [--purge]|status`` (as root).
"""
