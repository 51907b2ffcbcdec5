"""Kubernetes server binaries for the local lab, built offline from Debian's source package.

``ensure_binaries()`` returns a folder holding kube-apiserver, kube-controller-manager,
kube-scheduler, kubelet, kubectl, kube-proxy and a static ``pause``; it uses binaries given
to it or found on PATH, else builds them once into the user cache
(``~/.cache/stackcheck/kubernetes/<version>``) and reuses them.

The modules: ``binaries`` (``ensure_binaries``: found, or built once and cached), ``e2e``
(``ensure_e2e``: the same for ``e2e.test`` and ginkgo), ``steps`` (``Builder``: the build, step
by step), and what they share (``cache``, ``fetch``, ``compile``, ``runner``, ``versions``...).
"""

from __future__ import annotations

from stackcheck_builders.kubernetes.binaries import ensure_binaries
from stackcheck_builders.kubernetes.errors import K8sBuildError
from stackcheck_builders.kubernetes.progress import Progress
from stackcheck_builders.kubernetes.versions import ALL_BINARIES, KUBE_BINARIES

__all__ = ["ALL_BINARIES", "KUBE_BINARIES", "K8sBuildError", "Progress", "ensure_binaries"]
