"""The files Allure reads beside the results: environment, categories, executor."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from stackcheck.lab import Lab
from stackcheck_reports.categories import categories_json


def environment(lab: Lab | None, run_id: str) -> dict[str, str]:
    """The run's facts: provisioner, host count, run id and every ``lab.environment`` key."""
    facts = {"run.id": run_id}
    if lab is not None:
        facts |= {
            "lab.name": lab.name,
            "lab.provisioner": lab.provisioner,
            "lab.hosts": str(len(lab.hosts)),
            "lab.host.names": ",".join(h.name for h in lab.hosts),
        }
        facts |= {str(k): str(v) for k, v in sorted(lab.environment.items())}
    return facts


def runtime_facts(variants_dir: Path) -> dict[str, str]:
    """``runtime.<host>`` = the container runtime the runtime checks found on that host."""
    if not variants_dir.is_dir():
        return {}
    return {f"runtime.{p.name}": p.read_text().strip()
            for p in sorted(variants_dir.iterdir()) if p.is_file()}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=").replace(":", "\\:")


def write_environment(alluredir: Path, facts: Mapping[str, str]) -> Path:
    path = alluredir / "environment.properties"
    lines = [f"{_escape(k).replace(' ', '_')}={_escape(v)}" for k, v in facts.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_environment(alluredir: Path) -> dict[str, str]:
    path = alluredir / "environment.properties"
    if not path.exists():
        return {}
    facts = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", "!")):
            unescape = {"\\n": "\n", "\\=": "=", "\\:": ":", "\\\\": "\\"}
            for old, new in unescape.items():
                value = value.replace(old, new)
            facts[key.strip()] = value
    return facts


def write_categories(alluredir: Path) -> Path:
    path = alluredir / "categories.json"
    path.write_text(json.dumps(categories_json(), indent=2) + "\n")
    return path


#: Where the published HTML report lives, if the CI job knows (else a default per CI).
REPORT_URL = "STACKCHECK_REPORT_URL"
REPORT_PATH = "allure-report/index.html"


def _number(value: str | None) -> int:
    return int(value) if (value or "").isdigit() else 0


def executor(env: Mapping[str, str] = os.environ) -> dict[str, object] | None:
    """Allure's executor.json from the CI's variables (GitHub Actions, GitLab CI, Jenkins);
    None outside CI. The report URL is ``$STACKCHECK_REPORT_URL`` when set, else where the
    job's artifact ``allure-report/index.html`` is served (the run's page on GitHub)."""
    found: dict[str, object] | None = None
    if env.get("GITHUB_ACTIONS"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        repo, run = env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID", "")
        build = f"{server}/{repo}/actions/runs/{run}"
        number = env.get("GITHUB_RUN_NUMBER", "")
        found = {"name": "GitHub Actions", "type": "github",
                 "buildName": f"{env.get('GITHUB_WORKFLOW', '')} #{number}",
                 "buildUrl": build, "reportUrl": build,
                 "buildOrder": _number(env.get("GITHUB_RUN_NUMBER"))}
    elif env.get("GITLAB_CI"):
        job = env.get("CI_JOB_URL")
        found = {"name": "GitLab CI", "type": "gitlab",
                 "buildName": f"{env.get('CI_JOB_NAME', '')} #{env.get('CI_PIPELINE_IID', '')}",
                 "buildUrl": job,
                 "reportUrl": f"{job}/artifacts/file/{REPORT_PATH}" if job else None,
                 "buildOrder": _number(env.get("CI_PIPELINE_IID"))}
    elif env.get("JENKINS_URL"):
        build_url = env.get("BUILD_URL")
        found = {"name": "Jenkins", "type": "jenkins",
                 "buildName": f"{env.get('JOB_NAME', '')} #{env.get('BUILD_NUMBER', '')}",
                 "buildUrl": build_url,
                 "reportUrl": f"{build_url.rstrip('/')}/artifact/{REPORT_PATH}" if build_url
                 else None,
                 "buildOrder": _number(env.get("BUILD_NUMBER"))}
    elif env.get("CI"):
        found = {"name": env.get("CI_NAME", "CI"), "type": "ci",
                 "buildName": env.get("CI_BUILD_ID", "")}
    if found is not None:
        found["reportName"] = "stackcheck"
        if env.get(REPORT_URL):
            found["reportUrl"] = env[REPORT_URL]
    return found


def write_executor(alluredir: Path, env: Mapping[str, str] = os.environ) -> Path | None:
    info = executor(env)
    if info is None:
        return None
    path = alluredir / "executor.json"
    path.write_text(json.dumps({k: v for k, v in info.items() if v is not None}, indent=2) + "\n")
    return path
