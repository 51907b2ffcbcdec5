"""The container runtime's part of the lab picture (:mod:`stackcheck.picture`): on each host
that runs containers, which runtime it is and whether it answers (asked over SSH, every host
at once)."""

from __future__ import annotations

from collections.abc import Sequence

from stackcheck.lab import Lab
from stackcheck.picture.model import BAD, OK, UNKNOWN, HostView, LayerView, Line, Probing
from stackcheck.picture.probe import each_host
from stackcheck.runtime.detect import UNKNOWN as NONE_FOUND
from stackcheck.runtime.detect import Runtime, detect
from stackcheck.runtime.preflight import runs_containers

#: the roles of hosts that run containers (as :func:`runs_containers` says)
ROLES = ("docker", "node")


class RuntimePicture:
    """The lab picture's runtime part (:class:`stackcheck.picture.model.LayerPicture`)."""

    def probe(self, lab: Lab, probing: Probing) -> dict[str, Runtime] | None:
        """host name -> its runtime as :func:`stackcheck.runtime.detect` finds it."""
        from stackcheck.ssh import host_connection

        hosts = [h for h in lab.hosts if runs_containers(h)]
        if not hosts:
            return None
        return each_host(hosts, lambda h: detect(host_connection(lab, h), h.roles),
                         "container runtime", probing)

    def view(self, hosts: Sequence[HostView], found: dict[str, Runtime] | None) -> LayerView:
        part = LayerView()
        for host in hosts:
            if not set(ROLES) & set(host.roles):
                continue  # a host that runs no containers gets no runtime line
            runtime = (found or {}).get(host.name)
            if runtime is None:
                part.hosts[host.name] = [Line("runtime: not read", UNKNOWN)]
            elif runtime.answers:
                part.hosts[host.name] = [Line(f"runtime: {runtime.variant}", OK,
                                              tip=runtime.summary)]
            else:
                part.hosts[host.name] = [Line(f"runtime: {_short(runtime)}", BAD,
                                              strong=True, tip=runtime.summary)]
                part.problems.append(f"{host.name}: {_why(runtime)}")
        return part


def _short(runtime: Runtime) -> str:
    if runtime.kind == NONE_FOUND:
        return "none found"
    return f"{runtime.kind} does not answer"


def _why(runtime: Runtime) -> str:
    """What is wrong, without the probe's command line (the tooltip has it)."""
    if runtime.kind == NONE_FOUND or not runtime.socket:
        return runtime.summary
    return f"{runtime.kind} does not answer on {runtime.socket}: {runtime.said}"


PICTURE = RuntimePicture()
