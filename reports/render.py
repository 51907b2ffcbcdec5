"""The offline HTML report: Allure's CLI installed with npm into a cache folder.

Allure 2 (``allure-commandline``, needs Java) when ``java`` is found, else Allure 3
(``allure``, Node.js only). Either way ``<out>/index.html`` is a single file that opens
from disk with no network, and history is carried across runs so trends show:
Allure 2 keeps ``<out>/history/`` and copies it into the results before generating,
Allure 3 appends to ``<out>/history.jsonl`` (its ``historyPath``). Analytics are off
(ALLURE_NO_ANALYTICS for Allure 2; Allure 3's hard-wired gtag script is cut out).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("STACKCHECK_CACHE", "~/.cache/stackcheck")).expanduser() / "allure"
PACKAGES = {"allure2": "allure-commandline@2", "allure3": "allure@3"}
TIMEOUT = 300
#: The suite tree: layer → check group → host (Allure 2 reads these labels by itself).
TREE = ("parentSuite", "suite", "subSuite")


# Allure 3's report plugins embed Google Analytics whatever ALLURE_NO_ANALYTICS says.
_ANALYTICS = re.compile(
    r'<script async src="https://www\.googletagmanager\.com/[^"]*"></script>\s*'
    r"<script>\s*window\.dataLayer[\s\S]*?</script>"
)


class RenderError(RuntimeError):
    """The report could not be rendered; the message is one line for an operator."""


def _env() -> dict[str, str]:
    return os.environ | {"ALLURE_NO_ANALYTICS": "true", "NO_COLOR": "1",
                         "npm_config_update_notifier": "false"}


def pick_engine(engine: str = "auto") -> str:
    if engine != "auto":
        return engine
    return "allure2" if shutil.which("java") else "allure3"


def ensure_cli(engine: str, cache: Path = CACHE) -> Path:
    """The Allure CLI of ``engine``, installed with npm into ``cache/<engine>`` if missing."""
    if engine == "allure2" and not shutil.which("java"):
        raise RenderError("Allure 2 needs Java 17 ('java' not found); use --engine allure3")
    folder = cache / engine
    binary = folder / "node_modules" / ".bin" / "allure"
    if binary.exists():
        return binary
    if not shutil.which("node") or not shutil.which("npm"):
        raise RenderError("the HTML report needs Node.js and npm (not found on PATH); "
                          "install them (apt-get install nodejs npm) or use --no-html")
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "package.json").exists():
        (folder / "package.json").write_text('{"private": true}\n')
    cmd = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder), PACKAGES[engine]]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=TIMEOUT,
                          check=False)
    if done.returncode != 0 or not binary.exists():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RenderError(f"npm install {PACKAGES[engine]} failed: {tail}")
    return binary


def _run(cmd: list[str]) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=_env(),
                              timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"{Path(cmd[0]).name} {cmd[1]} took over {TIMEOUT}s") from None
    if done.returncode != 0:
        tail = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        raise RenderError(f"allure {cmd[1]} failed (exit {done.returncode}): {tail}")


def _render_allure2(cli: Path, results: Path, out: Path, work: Path) -> None:
    staged = work / "results"
    shutil.copytree(results, staged, ignore=shutil.ignore_patterns("history"))
    if (out / "history").is_dir():
        shutil.copytree(out / "history", staged / "history")
    _run([str(cli), "generate", "--clean", "-o", str(work / "full"), str(staged)])
    _run([str(cli), "generate", "--clean", "--single-file", "-o", str(work / "single"),
          str(staged)])
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "history", ignore_errors=True)
    shutil.copytree(work / "full" / "history", out / "history")
    shutil.copy2(work / "single" / "index.html", out / "index.html")


def _render_allure3(cli: Path, results: Path, out: Path, work: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "name": name,
        "output": str(work / "report"),
        "historyPath": str((out / "history.jsonl").resolve()),
        "plugins": {"awesome": {"options": {"singleFile": True, "reportName": name,
                                            "groupBy": list(TREE)}}},
    }
    (work / "allurerc.json").write_text(json.dumps(config))
    _run([str(cli), "generate", "--config", str(work / "allurerc.json"), str(results)])
    page = (work / "report" / "index.html").read_text()
    (out / "index.html").write_text(_ANALYTICS.sub("", page))


def render(results: Path, out: Path, *, engine: str = "auto", name: str = "stackcheck",
           cache: Path = CACHE) -> Path:
    """Render ``results`` into ``out/index.html`` and return its path."""
    results, out = Path(results).resolve(), Path(out).resolve()
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise RenderError(f"no Allure results in {results} (run pytest with --alluredir)")
    engine = pick_engine(engine)
    cli = ensure_cli(engine, cache)
    with tempfile.TemporaryDirectory(prefix="stackcheck-report-") as tmp:
        if engine == "allure2":
            _render_allure2(cli, results, out, Path(tmp))
        else:
            _render_allure3(cli, results, out, Path(tmp), name)
    return out / "index.html"
