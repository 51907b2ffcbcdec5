"""Builds of the software a lab runs that no package gives us, cached per user.

``stackcheck_builders.kubernetes``: the Kubernetes server binaries and ``e2e.test``, built offline
from Debian's source package. A builder imports only the library (``stackcheck``); provisioners
and suites call it.
"""
