"""cloud-init user-data: one template per role, merged into one #cloud-config document."""

from __future__ import annotations

from importlib.resources import files
from string import Template
from typing import Any

import yaml

LIST_KEYS = ("write_files", "runcmd", "bootcmd", "packages")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the user-data reads like the templates."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _template(role: str) -> str:
    return files(__package__).joinpath(f"{role}.yaml").read_text()


def render(roles: list[str], values: dict[str, str]) -> str:
    """The user-data for a host with ``roles``; ``values`` fill ``$name`` placeholders."""
    merged: dict[str, Any] = {}
    order = ["common"] + [r for r in ("etcd", "flannel", "docker", "master", "node", "atomic")
                          if r in roles]
    for role in order:
        part = yaml.safe_load(Template(_template(role)).substitute(values)) or {}
        for key, value in part.items():
            if key in LIST_KEYS:
                merged.setdefault(key, []).extend(value)
            else:
                merged.setdefault(key, value)
    return "#cloud-config\n" + yaml.dump(merged, Dumper=_Dumper, sort_keys=False, width=1000)


def lab_values(hosts: list[tuple[str, str, list[str]]], flannel_network: str,
               cluster_token: str) -> dict[str, dict[str, str]]:
    """Per host name, the template values; ``hosts`` is (name, address, roles)."""
    etcd = [(n, a) for n, a, roles in hosts if "etcd" in roles] or [hosts[0][:2]]
    masters = [a for _, a, roles in hosts if "master" in roles] or [hosts[0][1]]
    shared = {
        "etcd_initial_cluster": ",".join(f"{n}=http://{a}:2380" for n, a in etcd),
        "etcd_endpoints": ",".join(f"http://{a}:2379" for _, a in etcd),
        "first_etcd": f"http://{etcd[0][1]}:2379",
        "master_address": masters[0],
        "flannel_network": flannel_network,
        "cluster_token": cluster_token,
        "etc_hosts": "\n".join(f"      {a} {n}" for n, a, _ in hosts),
    }
    return {name: {**shared, "hostname": name, "address": address}
            for name, address, _ in hosts}
