"""Failure categories, shared by Allure's ``categories.json`` and the regression summary.

Allure marks an AssertionError (a check that found the lab wrong) as ``failed`` and any
other exception as ``broken``; a broken test whose exception is about reaching the lab
is "lab unreachable / preflight", any other broken test is a "harness error".
"""

from __future__ import annotations

import re

from stackcheck import layers

LAB_DEFECT = "lab defect"
BLOCKED_PATTERN = r"blocked: needs (?:every )?(SSH|[a-z][a-z-]*[a-z])"
UNREACHABLE = "lab unreachable / preflight"
HARNESS_ERROR = "harness error"

UNREACHABLE_PATTERN = (
    r"paramiko|SSHException|NoValidConnectionsError|AuthenticationException"
    r"|socket\.|gaierror|ConnectionError|ConnectionRefused|ConnectionReset|ConnectTimeout"
    r"|TimeoutError|WaitTimeout|TimeoutExpired|timed out|No route to host"
    r"|Network is unreachable|ProvisionerError|EOFError"
)


def _word(line: str) -> str:
    return "SSH" if line == layers.SSH else line


def categories_json() -> list[dict[str, object]]:
    """Allure categories; the first matching one wins."""
    blocked = [  # a check that did not run because the preflight found a line it needs down
        {
            "name": f"blocked by {line}",
            "matchedStatuses": ["broken", "failed"],
            "messageRegex": f"(?s).*blocked: needs (every )?{_word(line)}\\b.*",
        }
        for line in layers.health_lines()
    ]
    return [
        *blocked,
        {
            "name": UNREACHABLE,
            "matchedStatuses": ["broken"],
            "messageRegex": f"(?s).*({UNREACHABLE_PATTERN}).*",
        },
        {"name": LAB_DEFECT, "matchedStatuses": ["failed"]},
        {"name": HARNESS_ERROR, "matchedStatuses": ["broken"]},
    ]


def classify(status: str, message: str | None) -> str | None:
    """The category of a result with Allure ``status`` and exception ``message``."""
    blocked = re.search(BLOCKED_PATTERN, message or "")
    if blocked and status in ("failed", "broken"):
        return f"blocked by {blocked.group(1).lower()}"
    if status == "failed":
        return LAB_DEFECT
    if status == "broken":
        if re.search(UNREACHABLE_PATTERN, message or ""):
            return UNREACHABLE
        return HARNESS_ERROR
    return None
