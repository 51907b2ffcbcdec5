"""The installed distribution exposes only stackcheck-prefixed import names: the repository's
folders ``fixtures/``, ``reports/``, ``provisioners/``, ``suites/``, ``builders/`` and
``cli/`` install as ``stackcheck_<folder>`` (setup.py), so stackcheck can share an
environment with packages named ``fixtures`` or ``reports``. A wheel is built and read."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("fixtures", "reports", "provisioners", "suites", "builders", "cli")
NOT_SHIPPED = (".git", ".venv", "build", "*.egg-info", "allure-*", ".stackcheck", "tests",
               "benchmarks", "__pycache__", "node_modules")


def test_the_wheel_installs_only_stackcheck_names(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
         str(source)], capture_output=True, text=True, timeout=900, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = zipfile.ZipFile(next((tmp_path / "dist").glob("stackcheck-*.whl")))
    names = wheel.namelist()
    tops = {name.split("/")[0] for name in names}
    meta = next(top for top in tops if top.endswith(".dist-info"))
    assert tops - {meta} == {"stackcheck", *(f"stackcheck_{f}" for f in FOLDERS)}
    assert set(wheel.read(f"{meta}/top_level.txt").decode().split()) == tops - {meta}
    for folder in FOLDERS:  # each folder's modules, sub-packages included, under the new name
        shipped = {n.removeprefix(f"stackcheck_{folder}/") for n in names
                   if n.startswith(f"stackcheck_{folder}/") and n.endswith(".py")}
        expected = {p.relative_to(REPO / folder).as_posix()
                    for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts}
        assert shipped == expected, f"{folder}: {sorted(shipped ^ expected)[:5]}"
    assert "stackcheck_provisioners/openstack/example-spec.yaml" in names
    entry_points = wheel.read(f"{meta}/entry_points.txt").decode()
    targets = [line.split("=", 1)[1].strip() for line in entry_points.splitlines()
               if "=" in line]
    assert targets and all(t.startswith("stackcheck") for t in targets), targets


def test_code_imports_the_installed_names() -> None:
    """``from fixtures.lab import …`` works only in a source tree: the code imports
    ``stackcheck_fixtures`` (a suite's own helpers relatively)."""
    import ast

    bare = []
    for path in sorted(REPO.rglob("*.py")):
        if {".venv", ".git", "build"} & set(path.relative_to(REPO).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom)
                     and not node.level else [])
            bare += [f"{path.relative_to(REPO)}:{node.lineno}: {name}" for name in names
                     if name.split(".")[0] in FOLDERS]
    assert not bare, "imports of a folder's name instead of stackcheck_<folder>:\n" + "\n".join(
        bare)
