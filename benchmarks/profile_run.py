"""Profile a conformance run with pyinstrument and say where its wall time went.

Runs ``pytest -n 0`` (one process, so the profile sees every check) under pyinstrument against
a running lab, then prints the inclusive wall time of each check function and of the frames
that usually matter: SSH command round trips, testinfra's OS detection, SSH connects, the lab
lock, Allure reporting, etcd HTTP calls.

pyinstrument is not a project dependency: ``pip install --target DIR pyinstrument`` and pass
``--tools DIR`` (it is put on PYTHONPATH for the profiled run and this script).

Usage: ``.venv/bin/python benchmarks/profile_run.py --tools DIR --inventory lab.yaml
[--out session.pyisession] [-- extra pytest args]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, REPO, run

#: label -> (function name, path fragment) of frames whose inclusive time is reported
FRAMES = {
    "SSH commands (paramiko exec, incl. waiting for the host)": ("_exec_command",
                                                                 "testinfra/backend"),
    "testinfra OS detection": ("sysinfo", "testinfra/modules/systeminfo"),
    "SSH connects": ("connect", "paramiko/client"),
    "etcd HTTP calls": ("send", "requests/sessions"),
    "lab lock": ("lab_lock", "stackcheck/locks"),
    "Allure reporting": ("_report_item", "allure_commons/logger"),
    "Allure fixture containers": ("stop_group", "allure_commons/reporter"),
    "imports": ("_find_and_load", "importlib._bootstrap"),
}


def inclusive(session_file: Path) -> tuple[float, dict[str, float], dict[str, float]]:
    """(total, time per check function, time per FRAMES label), each frame counted once."""
    from pyinstrument.session import Session

    root = Session.load(str(session_file)).root_frame()
    checks: dict[str, float] = defaultdict(float)
    frames: dict[str, float] = defaultdict(float)

    def walk(frame, inside: frozenset[str]) -> None:
        name, path = frame.function or "", frame.file_path or ""
        here = set()
        if name.startswith("test_") and "/suites/" in path and name not in inside:
            checks[f"{Path(path).parent.name}/{name}"] += frame.time
            here.add(name)
        for label, (func, fragment) in FRAMES.items():
            if name == func and fragment in path and label not in inside:
                frames[label] += frame.time
                here.add(label)
        for child in frame.children:
            walk(child, inside | here)

    walk(root, frozenset())
    return root.time, dict(checks), dict(frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", type=Path, required=True, help="where pyinstrument is")
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="keep the pyinstrument session here")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    sys.path.insert(0, str(args.tools))
    with tempfile.TemporaryDirectory(prefix="stackcheck-profile-") as tmp:
        out = args.out or Path(tmp) / "run.pyisession"
        timed = run([PYTHON, "-m", "pyinstrument", "-r",
                     "pyinstrument.renderers.SessionRenderer", "-o", str(out), "-m", "pytest",
                     "-n", "0", f"--alluredir={Path(tmp) / 'allure'}",
                     f"--history-dir={Path(tmp) / 'history'}", f"--inventory={args.inventory}",
                     "-q", *args.pytest_args],
                    timeout=args.timeout, env={"PYTHONPATH": f"{args.tools}:{REPO}"})
        print(f"profiled run: {timed.seconds:.1f}s, exit {timed.returncode}")
        total, checks, frames = inclusive(out)
    print(f"profile: {total:.1f}s of wall time")
    print("per check function (all parametrizations, setup/teardown fixtures not included):")
    for name, seconds in sorted(checks.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {seconds:7.2f}s {100 * seconds / total:5.1f}%  {name}")
    print("frames (inclusive, anywhere in the run):")
    for label, seconds in sorted(frames.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds:7.2f}s {100 * seconds / total:5.1f}%  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
