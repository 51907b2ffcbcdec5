"""flannel's part of the preflight: each flannel host has its lease file and its device up."""

from __future__ import annotations

from typing import Any

from stackcheck.hostlayers import LayerProbe
from stackcheck.lab import Host, Lab
from stackcheck.preflight import LayerHealth, LayerPreflight, Seen

LINE = "flannel"
FLANNEL_DEVICE = "flannel.1"
SUBNET_ENV = "/run/flannel/subnet.env"


def flannel_probe() -> LayerProbe:
    return LayerProbe(
        LINE, "flannel",
        f"grep -q '^FLANNEL_SUBNET=' {SUBNET_ENV} || {{ echo 'no FLANNEL_SUBNET in {SUBNET_ENV}';"
        f" exit 1; }}; ip -o link show {FLANNEL_DEVICE} 2>&1 | grep -q 'state UP\\|,UP' || "
        f"{{ echo \"{FLANNEL_DEVICE} missing or down\"; exit 1; }}",
        f"{SUBNET_ENV} and {FLANNEL_DEVICE} up",
        says_what_is_missing=True,
    )


class FlannelPreflight(LayerPreflight):
    def host_probes(self, lab: Lab, host: Host, conn: Any) -> list[LayerProbe]:
        return [flannel_probe()] if host.has_role("flannel") else []

    def judge(self, seen: Seen) -> dict[str, LayerHealth]:
        health = seen.host_line(LINE, f"{SUBNET_ENV.rsplit('/', 1)[1]} and {FLANNEL_DEVICE} up "
                                      "on all {n} hosts")
        return {LINE: health} if health is not None else {}


PREFLIGHT = FlannelPreflight()
