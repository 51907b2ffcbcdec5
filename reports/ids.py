"""Stable ids: every check in ``suites/`` carries a unique ``@allure.id("...")``.

Like Tempest's check-uuid: history, waivers and skip lists key on the id, so a check
keeps its past when it is renamed or moved.
"""

from __future__ import annotations

import ast
from pathlib import Path


def _allure_id(func: ast.FunctionDef | ast.AsyncFunctionDef) -> str | bool | None:
    """The literal id of ``@allure.id(...)``; True if present but not a string literal."""
    for deco in func.decorator_list:
        if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)
                and deco.func.attr == "id" and isinstance(deco.func.value, ast.Name)
                and deco.func.value.id == "allure"):
            arg = deco.args[0] if deco.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value:
                return arg.value
            return True
    return None


def _tests(tree: ast.Module):
    for node in tree.body:
        is_func = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        if is_func and node.name.startswith("test"):
            yield node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for child in node.body:
                if (isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                        and child.name.startswith("test")):
                    yield child


def check_ids(root: Path) -> list[str]:
    """Problems found under ``root``: checks without an id, ids used twice."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for path in sorted(Path(root).rglob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for func in _tests(tree):
            where = f"{path}:{func.lineno}: {func.name}"
            found = _allure_id(func)
            if found is None:
                problems.append(f"{where}: no @allure.id(\"...\")")
            elif found is True:
                problems.append(f"{where}: @allure.id needs a non-empty string literal")
            elif found in seen:
                problems.append(f"{where}: allure id {found!r} already used by {seen[found]}")
            else:
                seen[found] = where
    return problems
