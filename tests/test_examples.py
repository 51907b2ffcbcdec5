"""The CI recipes under examples/ parse, run on a schedule, carry history, publish the report,
and use only commands and options the README documents."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
ENTRY_POINTS = ("./run.sh", ".venv/bin/stackcheck")
HISTORY = {".stackcheck/history", "allure-report/history", "allure-report/history.jsonl"}


def _commands(script: str) -> list[list[str]]:
    """stackcheck's own commands in a shell script, as argument lists."""
    found = []
    for line in script.splitlines():
        for part in re.split(r"\|\||&&|;|\bthen\b", line):
            part = part.strip()
            if part.startswith(ENTRY_POINTS):
                found.append(shlex.split(part, comments=True))
    return found


def _documented(command: list[str]) -> None:
    head = " ".join(command[:2])
    assert head in README, f"README does not show {head!r}"
    for arg in command[2:]:
        if arg.startswith("-"):
            option = arg.split("=", 1)[0]
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", README), (
                f"{head}: option {option} is not in the README")


def _github() -> dict:
    return yaml.safe_load((REPO / "examples" / "github-actions.yml").read_text())


def _gitlab() -> dict:
    return yaml.safe_load((REPO / "examples" / "gitlab-ci.yml").read_text())


def _paths(value: str | list[str]) -> set[str]:
    items = value.splitlines() if isinstance(value, str) else value
    return {p.strip().rstrip("/") for p in items if p.strip()}


def test_github_workflow_runs_nightly_keeps_history_and_fails_on_new_failures() -> None:
    workflow = _github()
    triggers = workflow.get("on") or workflow[True]  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"][0]["cron"]
    [job] = workflow["jobs"].values()
    steps = job["steps"]
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    assert _paths(uses["actions/cache/restore"]["with"]["path"]) >= HISTORY
    assert uses["actions/cache/save"]["if"] == "always()"
    assert _paths(uses["actions/cache/save"]["with"]["path"]) >= HISTORY
    assert uses["actions/upload-artifact"]["if"] == "always()"
    assert "allure-report/index.html" in _paths(uses["actions/upload-artifact"]["with"]["path"])
    commands = [c for s in steps if "run" in s for c in _commands(s["run"])]
    assert [c[:2] for c in commands] == [["./run.sh", "conformance"],
                                         [".venv/bin/stackcheck", "report"]]
    assert "--nightly" in commands[-1] and steps[-1].get("if") is None  # it decides the job
    for command in commands:
        _documented(command)


def test_gitlab_job_runs_nightly_keeps_history_and_fails_on_new_failures() -> None:
    [job] = _gitlab().values()
    assert any("schedule" in rule["if"] for rule in job["rules"])
    assert job["cache"]["when"] == "always" and _paths(job["cache"]["paths"]) >= HISTORY
    assert job["artifacts"]["when"] == "always"
    assert "allure-report/index.html" in _paths(job["artifacts"]["paths"])
    commands = [c for line in job["script"] for c in _commands(line)]
    assert [c[:2] for c in commands] == [["./run.sh", "conformance"],
                                         [".venv/bin/stackcheck", "report"]]
    assert "--nightly" in commands[-1]
    for command in commands:
        _documented(command)


def test_the_recipes_are_in_the_readme() -> None:
    for name in ("examples/github-actions.yml", "examples/gitlab-ci.yml"):
        assert name in README and Path(REPO / name).exists()
