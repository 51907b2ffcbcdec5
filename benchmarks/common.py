"""Shared parts of the benchmarks: own labs that are always torn down, timed pytest runs,
interleaved repetitions, machine facts and statistics.

Every benchmark measures its variants side by side in one invocation, interleaved (the order
rotates every repetition), and reports the median and the spread (min..max) of each; ratios
are of medians. Absolute times on a shared machine drift, ratios much less.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from stackcheck.lab import Lab  # noqa: E402
from stackcheck.provisioner import ProvisionConfig  # noqa: E402
from stackcheck_provisioners.local import LocalProvisioner, destroy_state_dir  # noqa: E402

PYTHON = str(REPO / ".venv" / "bin" / "python")
#: lab name -> subnet reserved for the benchmarks on shared machines
LABS = {3: ("bench", "10.213.60.0/24"), 6: ("bench6", "10.213.61.0/24"),
        12: ("bench12", "10.213.62.0/24")}


class Interrupted(KeyboardInterrupt):
    """SIGTERM/SIGHUP, turned into an exception so ``finally`` blocks tear labs down."""


def handle_signals() -> None:
    def raise_interrupt(signum: int, frame: object) -> None:
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGHUP, raise_interrupt)


def need_root() -> None:
    if os.geteuid() != 0:
        sys.exit("the benchmarks build local labs: run them as root")


def start() -> dict[str, Any]:
    """Common start of a benchmark: root, signals that tear labs down, the machine's facts."""
    need_root()
    handle_signals()
    return machine()


def lab_parser(doc: str | None, *, repeat: int, timeout: float, hosts: int = 3,
               pytest_args: bool = True) -> argparse.ArgumentParser:
    """Options of a benchmark against one lab (its own, or ``--inventory``)."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--hosts", type=int, default=hosts, choices=(3, 6, 12))
    parser.add_argument("--inventory", type=Path, help="use this running lab (left running)")
    parser.add_argument("--timeout", type=float, default=timeout, help="per run, seconds")
    if pytest_args:
        parser.add_argument("--pytest-args", default="", help="extra pytest arguments")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser


@dataclass
class BenchLab:
    """A local lab made for a benchmark (or adopted from ``--inventory``)."""

    lab: Lab
    inventory: Path
    state_dir: Path | None
    bring_up_s: float
    teardown_s: float = 0.0


@contextlib.contextmanager
def local_lab(hosts: int, workdir: Path, options: dict[str, str] | None = None,
              inventory: Path | None = None) -> Iterator[BenchLab]:
    """A running lab of ``hosts`` hosts, torn down on exit (also on Ctrl-C / SIGTERM).

    With ``inventory``, that lab is used as it is and left running.
    """
    if inventory is not None:
        from stackcheck.lab import load_inventory

        yield BenchLab(load_inventory(inventory), inventory.resolve(), None, 0.0)
        return
    name, subnet = LABS.get(hosts, LABS[3])
    state_dir = workdir / f"lab-{name}"
    config = ProvisionConfig(
        run_id=time.strftime("bench-%Y%m%d-%H%M%S"), state_dir=state_dir, hosts=hosts,
        options={"name": name, "subnet": subnet, "kubernetes": "false", **(options or {})})
    start = time.monotonic()
    bench = None
    try:
        lab = LocalProvisioner().create(config)
        bench = BenchLab(lab, state_dir / "inventory.yaml", state_dir, time.monotonic() - start)
        yield bench
    finally:
        start = time.monotonic()
        problems = destroy_state_dir(state_dir) if (state_dir / "state.json").exists() else []
        if bench is not None:
            bench.teardown_s = time.monotonic() - start
        if problems:
            print(f"teardown of {name} left: {problems}", file=sys.stderr)


@dataclass
class Timed:
    seconds: float
    returncode: int
    tail: str


def run(argv: list[str], *, timeout: float, env: dict[str, str] | None = None,
        cwd: Path = REPO) -> Timed:
    """Run a command (its own process group, killed on timeout or interrupt); time it."""
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # pytest tears its lab state down
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
        seconds = time.monotonic() - start
        out.seek(0)
        lines = out.readlines()
        # the short summary's FAILED/ERROR lines too: which checks failed outlives the run
        failed = [x for x in lines if x.startswith(("FAILED ", "ERROR "))]
        tail = "".join(failed[:20] + lines[-5:])
    return Timed(seconds, proc.returncode, tail)


def pytest_argv(inventory: Path, workdir: Path, *, workers: str | None = "auto",
                extra: list[str] | None = None) -> list[str]:
    """The conformance run as the README and run.sh give it, against ``inventory``."""
    argv = [PYTHON, "-m", "pytest"]
    if workers is not None:
        argv += ["-n", workers]
        if workers != "0":
            argv += ["--dist", "loadgroup"]
    return [*argv, f"--alluredir={workdir / 'allure-results'}", "--clean-alluredir",
            f"--inventory={inventory}", f"--history-dir={workdir / 'history'}",
            "-q", *(extra or [])]


@dataclass
class Series:
    """Repeated measurements of one variant."""

    name: str
    values: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def spread(self) -> str:
        if not self.values:
            return "-"
        return f"{min(self.values):.1f}..{max(self.values):.1f}"


def interleaved(variants: dict[str, Callable[[], Timed]], repeat: int,
                log: Callable[[str], None] = print) -> dict[str, Series]:
    """Run every variant ``repeat`` times, rotating the order each round."""
    names = list(variants)
    series = {n: Series(n) for n in names}
    for round_ in range(repeat):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            log(f"round {round_ + 1}/{repeat}: {name} (load {loadavg()})")
            timed = variants[name]()
            series[name].values.append(timed.seconds)
            if timed.returncode != 0:
                series[name].failures.append(f"exit {timed.returncode}: {timed.tail.strip()}")
            log(f"  {timed.seconds:.1f}s, exit {timed.returncode}")
    return series


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> dict[str, Any]:
    """What the README records with each figure."""
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpus": os.cpu_count(), "cpu": model,
            "memory_gib": round(mem_kb / 2**20, 1), "kernel": platform.release(),
            "python": platform.python_version(), "load_start": loadavg()}


def save(path: Path | None, data: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")
