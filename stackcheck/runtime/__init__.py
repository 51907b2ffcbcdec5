"""The container runtime of a host: Docker, containerd or CRI-O, whichever it runs.

Modules: :mod:`~stackcheck.runtime.parse` (pure parsers of what the tools print: ``ctr
version``, containerd's ``config.toml``, a kubelet's flags and config, CNI configs) and
:mod:`~stackcheck.runtime.detect` (asks a host: :func:`detect` returns a :class:`Runtime`
saying which runtime it is, whether it answers, its socket, the kubelet's CRI endpoint and
the CNI network its pods get).
"""

from stackcheck.runtime.detect import Runtime, detect, docker_checks_skip, probe
from stackcheck.runtime.parse import CniNetwork, ContainerdConfig, KubeletRuntime

__all__ = ["CniNetwork", "ContainerdConfig", "KubeletRuntime", "Runtime", "detect",
           "docker_checks_skip", "probe"]
