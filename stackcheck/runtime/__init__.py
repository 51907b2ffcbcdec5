"""The container runtime of a host: Docker, containerd or CRI-O, whichever it runs.

Modules: :mod:`~stackcheck.runtime.parse` (pure parsers of what the tools print: ``ctr
version``, containerd's ``config.toml``, a kubelet's flags and config, CNI configs),
:mod:`~stackcheck.runtime.detect` (asks a host: :func:`detect` returns a :class:`Runtime`
saying which runtime it is, whether it answers, its socket, the kubelet's CRI endpoint and
the CNI network its pods get) and :mod:`~stackcheck.runtime.picture` (its part of the lab
picture).
"""

from stackcheck.runtime.detect import Runtime, detect, docker_checks_skip, probe
from stackcheck.runtime.parse import CniNetwork, ContainerdConfig, KubeletRuntime

__all__ = ["CniNetwork", "ContainerdConfig", "KubeletRuntime", "Runtime", "detect",
           "docker_checks_skip", "probe"]
