"""stackcheck's pytest options: known early (pytest11), and a misread rootdir stops the run."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def collect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_options_plugin_is_a_pytest11_entry_point() -> None:
    found = {e.name: e.value for e in importlib.metadata.entry_points(group="pytest11")}
    assert found.get("stackcheck_fixtures.options") == "stackcheck_fixtures.options"


def test_a_path_after_a_space_that_moves_the_rootdir_stops_the_run(tmp_path: Path) -> None:
    inventory = tmp_path / "lab.yaml"
    inventory.write_text("name: x\n")
    done = collect("--inventory", str(inventory))
    assert done.returncode == 4, done.stdout[-1500:]
    # the rootdir pytest picks is the file's folder or a common ancestor with the project
    assert f"as its rootdir (ini file: None) instead of the stackcheck project {ROOT}" \
        in done.stderr
    assert f"(--inventory=/path/lab.yaml), or add -c {ROOT / 'pyproject.toml'}" in done.stderr


def test_the_same_path_with_equals_collects_the_suites_only(tmp_path: Path) -> None:
    inventory = tmp_path / "lab.yaml"
    inventory.write_text("name: x\n")
    done = collect(f"--inventory={inventory}")
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith("suites/") for line in collected)
