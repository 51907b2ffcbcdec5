"""The run's state file: every resource id this run created, written as it goes."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "openstack-state.json"

#: Teardown order: what must go before what it depends on.
DELETE_ORDER = (
    "floating_ip", "server", "router_interface", "router", "subnet", "network",
    "security_group", "keypair",
)


@dataclass
class Resource:
    kind: str
    id: str
    name: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class RunState:
    """Resources of one run; ``save()`` after each change so a crash loses nothing."""

    path: Path
    cloud: str
    run_id: str
    resources: list[Resource] = field(default_factory=list)

    @classmethod
    def load(cls, state_dir: Path) -> RunState | None:
        path = state_dir / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(path=path, cloud=data["cloud"], run_id=data["run_id"],
                   resources=[Resource(**r) for r in data["resources"]])

    def add(self, kind: str, id: str, name: str = "", **extra: str) -> Resource:
        res = Resource(kind, id, name, dict(extra))
        self.resources.append(res)
        self.save()
        return res

    def remove(self, res: Resource) -> None:
        self.resources.remove(res)
        self.save()

    def in_delete_order(self) -> list[Resource]:
        return sorted(self.resources, key=lambda r: DELETE_ORDER.index(r.kind))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"cloud": self.cloud, "run_id": self.run_id,
                "resources": [asdict(r) for r in self.resources]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.path)
