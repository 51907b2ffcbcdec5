"""The run a pytest session belongs to, shared by the fixtures and the reports plugin.

Kept in ``config.stash``: the run id, the run folder (``.stackcheck/runs/<run id>``), the
lab and its provisioner (filled by the session lab, ``fixtures/lab.py``) and the preflight
verdict (written by ``fixtures/preflight.py`` to ``<run dir>/preflight.json``). It lives in
``reports/``, the lower of the two pytest layers: fixtures import reports, never the reverse.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackcheck import preflight
from stackcheck.lab import Lab
from stackcheck.picture.runfiles import PREFLIGHT
from stackcheck.provisioner import Provisioner

LAB_KEY = pytest.StashKey[Lab | None]()
PROVISIONER_KEY = pytest.StashKey[Provisioner]()
RUN_DIR_KEY = pytest.StashKey[Path]()
RUN_ID_KEY = pytest.StashKey[str]()
VERDICT_KEY = pytest.StashKey[preflight.Verdict | None]()

#: under the run dir: one file per host holding its runtime's variant, for the report
VARIANTS_DIR = Path("evidence") / "runtime"


def preflight_path(config: pytest.Config) -> Path:
    return config.stash[RUN_DIR_KEY] / PREFLIGHT


def verdict_of(config: pytest.Config) -> preflight.Verdict | None:
    """The run's preflight verdict (read once per worker), or None if there was none."""
    if VERDICT_KEY not in config.stash:
        found = None
        if RUN_DIR_KEY in config.stash:
            found = preflight.Verdict.read(preflight_path(config))
        config.stash[VERDICT_KEY] = found
    return config.stash[VERDICT_KEY]
