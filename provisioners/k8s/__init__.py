"""Kubernetes server binaries for the local lab, built offline from Debian's source package.

``ensure_binaries()`` returns a folder holding kube-apiserver, kube-controller-manager,
kube-scheduler, kubelet, kubectl, kube-proxy and a static ``pause``; it uses binaries given
to it or found on PATH, else builds them once into the user cache and reuses them.
"""

from __future__ import annotations

from provisioners.k8s.build import ensure_binaries
from provisioners.k8s.errors import K8sBuildError
from provisioners.k8s.progress import Progress
from provisioners.k8s.versions import ALL_BINARIES, KUBE_BINARIES

__all__ = ["ALL_BINARIES", "KUBE_BINARIES", "K8sBuildError", "Progress", "ensure_binaries"]
