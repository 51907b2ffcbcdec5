"""The layers that live on each host, probed over one SSH command per host. Each layer
gives its own probes (the container runtime answers, the kubelet answers its health
endpoint, flannel's plumbing is there); they run here together, each bounded on the host
with ``timeout``. Used by the preflight.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from stackcheck.errors import cut_line

#: s each probe may take on the host
PROBE_TIMEOUT = 5
_SECTION = "@@stackcheck-layer "
_RC = "@@stackcheck-rc "


@dataclass(frozen=True)
class LayerProbe:
    """One host layer's probe: the shell command, and the service that provides it."""

    layer: str  # the verdict line it answers for: runtime, kubelet, flannel
    service: str  # the service (ServiceControl name) to ask the host about when it fails
    command: str
    what: str  # what answering means, for messages ("docker version")
    #: the probe prints what is missing itself (no "does not answer (…)" around it)
    says_what_is_missing: bool = False

    def finding(self, why: str) -> str:
        """``does not answer (docker version: Cannot connect …)``, or what is missing."""
        if self.says_what_is_missing:
            return why
        return f"does not answer ({self.what}: {why})"


def _script(probes: list[LayerProbe]) -> str:
    parts = []
    for probe in probes:
        parts.append(f"echo '{_SECTION}{probe.layer}'; "
                     f"timeout {PROBE_TIMEOUT} sh -c {shlex.quote(probe.command)} 2>&1 "
                     f"</dev/null; echo \"{_RC}$?\"")
    return "; ".join(parts)


def _reason(output: str, rc: int) -> str:
    """The last line a failed probe printed, as the reason ('timed out' for timeout's 124)."""
    if rc == 124:
        return f"no answer within {PROBE_TIMEOUT} s"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return cut_line(lines[-1], 160) if lines else f"exit status {rc}, no output"


def run_probes(conn: Any, probes: list[LayerProbe]) -> dict[str, tuple[LayerProbe, str | None]]:
    """layer -> (its probe, None if it answers else why not, one line), all ``probes`` in one
    command over ``conn``. Raises if the host cannot be reached over SSH."""
    if not probes:
        return {}
    result = conn.run(_script(probes))
    found: dict[str, tuple[LayerProbe, str | None]] = {}
    by_layer = {p.layer: p for p in probes}
    for block in result.stdout.split(_SECTION)[1:]:
        layer, _, rest = block.partition("\n")
        output, _, rc_text = rest.rpartition(_RC)
        probe = by_layer.get(layer.strip())
        if probe is None:
            continue
        rc = int(rc_text.strip() or 1) if rc_text.strip().isdigit() else 1
        found[probe.layer] = (probe, None if rc == 0 else _reason(output, rc))
    for layer, probe in by_layer.items():
        found.setdefault(layer, (probe, f"the probe printed nothing (exit {result.rc})"))
    return found
