"""Waivers: known failures with an owner and an expiry date.

```yaml
waivers:
  - test: etcd-health-endpoints       # an allure id, or a pytest nodeid glob
    reason: member h3 flaps after the kernel upgrade
    ticket: LAB-123                   # ticket and/or owner
    expires: 2026-01-31
```

A waived failure is reported as xfail ("waived"); an expired waiver fails the run.
"""

from __future__ import annotations

import datetime as dt
from fnmatch import fnmatchcase
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stackcheck.lab import located_all, problems_of, read_yaml  # file:line: field: why


class WaiverError(ValueError):
    """A malformed waivers file; the message names the file, line and field."""


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test: str = Field(min_length=1, description="allure id, or a nodeid glob")
    reason: str = Field(min_length=1)
    owner: str | None = None
    ticket: str | None = None
    expires: dt.date

    @model_validator(mode="after")
    def _accountable(self) -> Waiver:
        if not (self.owner or self.ticket):
            raise ValueError("a waiver needs an owner or a ticket")
        return self

    def matches(self, allure_id: str | None, nodeid: str) -> bool:
        return self.test == allure_id or self.test == nodeid or fnmatchcase(nodeid, self.test)

    def expired(self, today: dt.date | None = None) -> bool:
        return (today or dt.date.today()) > self.expires

    def describe(self) -> str:
        who = ", ".join(x for x in (self.ticket, self.owner) if x)
        return f"{self.test}: {self.reason} ({who}; expires {self.expires})"


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    waivers: list[Waiver] = Field(default_factory=list)


def load_waivers(path: str | Path) -> list[Waiver]:
    """Read and validate a waivers file; raise WaiverError naming, for every problem,
    file:line: field: why."""
    path = Path(path)
    data, root = read_yaml(path, "waivers", WaiverError)
    try:
        return WaiverFile.model_validate(data or {}).waivers
    except ValidationError as exc:
        raise WaiverError(located_all(path, root, problems_of(exc))) from None


def find(waivers: list[Waiver], allure_id: str | None, nodeid: str) -> Waiver | None:
    return next((w for w in waivers if w.matches(allure_id, nodeid)), None)
