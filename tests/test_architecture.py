"""The import direction, checked on the source (in the spirit of Tempest's hacking checks).

The layers, bottom up: ``stackcheck/`` (the library: talks to and parses a lab, no pytest)
<- ``provisioners/`` <- ``fixtures/`` <- ``suites/``; ``reports/`` is the pytest plugin for
evidence and results. The rules:

- the library imports none of ``provisioners``, ``fixtures``, ``suites``, ``reports``, and
  not pytest (its command line reaches provisioners through the registry only);
- fixtures never import suites;
- no suite imports another suite (``suites/<layer>/`` is one suite, sub-folders included);
- no provisioner imports a sibling provisioner (``provisioners/<a>/`` or ``provisioners/<a>.py``
  never imports ``provisioners.<b>``): what two share lives in the kit ``provisioners/hostlab``
  (which imports no provisioner) or in ``provisioners/base.py``.

An exception is listed in ``ALLOWED`` with its reason. Every import is read with ``ast``,
relative imports resolved, including those inside functions (a lazy import is an import).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("stackcheck", "provisioners", "fixtures", "suites", "reports")
LIBRARY_MUST_NOT_IMPORT = ("provisioners", "fixtures", "suites", "reports", "pytest", "_pytest")
#: what every provisioner may import under ``provisioners/``: the interface, the kit for labs
#: on this machine, and the Kubernetes build (a builder, not a provisioner: it leaves
#: ``provisioners/`` in issue 26)
PROVISIONERS_SHARED = ("base", "hostlab", "k8s")

# (importing file, imported module) -> why it is allowed
ALLOWED: dict[tuple[str, str], str] = {
    ("stackcheck/options.py", "pytest"):
        "the pytest11 entry point that declares the options; it must load before any "
        "conftest, so it ships with the library",
    ("stackcheck/cli.py", "reports.cli"):
        "the 'stackcheck report' command: the CLI is the one composition root of the "
        "command line",
}

# Violations being removed (empty since issue 17; a new one needs a reason and a plan). An
# entry that no longer occurs fails the test, so this list only shrinks.
KNOWN: dict[tuple[str, str], str] = {
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path = REPO) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` yields ``a.b``)."""
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
    return found


def _sources() -> list[Path]:
    return sorted(p for top in PACKAGES for p in (REPO / top).rglob("*.py"))


def _suite_of(module_or_path: str) -> str | None:
    parts = module_or_path.replace("/", ".").split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "suites" else None


def _within(module: str, top: str) -> bool:
    return module == top or module.startswith(top + ".")


def _provisioner_of(module_or_path: str) -> str | None:
    """``local`` for ``provisioners/local/build.py`` or ``provisioners.local.build``;
    ``existing`` for ``provisioners/existing.py``; None for the registry itself."""
    parts = module_or_path.removesuffix(".py").replace("/", ".").split(".")
    if len(parts) < 2 or parts[0] != "provisioners" or parts[1] == "__init__":
        return None
    return parts[1]


def provisioner_rule(rel: str, module: str) -> str | None:
    """The rule ``rel`` breaks by importing ``module``, if it is a sibling provisioner."""
    mine, theirs = _provisioner_of(rel), _provisioner_of(module)
    if mine is None or theirs is None or theirs == mine or theirs in PROVISIONERS_SHARED:
        return None
    if mine == "base":
        return "provisioners/base.py imports no provisioner"
    return "no provisioner imports a sibling provisioner (shared code lives in the kit)"


def violations() -> dict[tuple[str, str], str]:
    """(file, imported module) -> the rule it breaks."""
    found: dict[tuple[str, str], str] = {}
    for path in _sources():
        rel = path.relative_to(REPO).as_posix()
        top = rel.split("/", 1)[0]
        for module in imports(path):
            rule = None
            if top == "stackcheck" and any(_within(module, t) for t in LIBRARY_MUST_NOT_IMPORT):
                rule = "the library imports nothing above it"
            elif top == "fixtures" and _within(module, "suites"):
                rule = "fixtures never import suites"
            elif (top == "suites" and _suite_of(module) is not None
                  and _suite_of(module) != _suite_of(rel)):
                rule = "no suite imports another suite"
            elif top == "provisioners":
                rule = provisioner_rule(rel, module)
            if rule is not None:
                found[rel, module] = rule
    return found


def _allowed(key: tuple[str, str], table: dict[tuple[str, str], str]) -> bool:
    rel, module = key
    return (rel, module) in table


def test_imports_go_one_way() -> None:
    found = violations()
    new = sorted(k for k in found if not _allowed(k, ALLOWED) and not _allowed(k, KNOWN))
    assert not new, "imports against the layering:\n" + "\n".join(
        f"  {rel} imports {module}: {found[rel, module]}" for rel, module in new)


def test_known_violations_are_still_there() -> None:
    """An entry of KNOWN that was fixed must leave the list (so it never grows back)."""
    found = violations()
    fixed = sorted(k for k in KNOWN if not any(_allowed(f, {k: ""}) for f in found))
    assert not fixed, "fixed, remove from KNOWN: " + ", ".join(f"{r}: {m}" for r, m in fixed)


def test_allowed_exceptions_are_still_needed() -> None:
    found = violations()
    unused = sorted(k for k in ALLOWED if not any(_allowed(f, {k: ""}) for f in found))
    assert not unused, "no longer needed, remove from ALLOWED: " + ", ".join(
        f"{r}: {m}" for r, m in unused)


def test_the_checker_sees_each_kind_of_import(tmp_path: Path) -> None:
    module = tmp_path / "suites" / "docker" / "test_x.py"
    module.parent.mkdir(parents=True)
    module.write_text("import suites.etcd.cluster as c\n"
                      "from ..flannel import model\n"
                      "from . import conftest\n"
                      "def f():\n    from provisioners.base import Provisioner\n")
    assert imports(module, tmp_path) == {
        "suites.etcd.cluster", "suites.flannel", "suites.docker", "provisioners.base"}


def test_the_checker_sees_a_sibling_provisioner_import() -> None:
    sibling = "no provisioner imports a sibling provisioner (shared code lives in the kit)"
    assert provisioner_rule("provisioners/machines/build.py", "provisioners.local.etcd") == sibling
    assert provisioner_rule("provisioners/hostlab/etcd.py", "provisioners.local") == sibling
    assert provisioner_rule("provisioners/openstack/cli.py", "provisioners.existing") == sibling
    assert provisioner_rule("provisioners/local/build.py", "provisioners.local.control") is None
    assert provisioner_rule("provisioners/local/build.py", "provisioners.hostlab.etcd") is None
    assert provisioner_rule("provisioners/machines/build.py", "provisioners.base") is None
    assert provisioner_rule("provisioners/__init__.py", "provisioners.local") is None
    assert provisioner_rule("provisioners/local/build.py", "provisioners") is None


def attach_calls(path: Path) -> list[int]:
    """Lines where ``path`` reaches ``allure.attach`` (call, ``.file`` or ``from`` import)."""
    def reaches(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return (node.attr == "attach" and isinstance(node.value, ast.Name)
                    and node.value.id == "allure")
        if isinstance(node, ast.ImportFrom):
            return node.module == "allure" and any(a.name == "attach" for a in node.names)
        return False

    return [n.lineno for n in ast.walk(ast.parse(path.read_text(), str(path))) if reaches(n)]


def test_evidence_goes_through_reports_evidence() -> None:
    """Only ``reports/`` calls ``allure.attach``: everything else uses ``reports.evidence``,
    which redacts (the ruff rule TID251 in pyproject.toml says the same in an editor)."""
    found = [f"{p.relative_to(REPO)}:{line}" for p in _sources()
             if not p.relative_to(REPO).as_posix().startswith("reports/")
             for line in attach_calls(p)]
    assert not found, "allure.attach outside reports.evidence: " + ", ".join(found)


def test_the_attach_check_sees_each_form(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text('import allure\nfrom allure import attach\n'
                      'allure.attach("x", "y")\nallure.attach.file("f")\n')
    assert sorted(attach_calls(sample)) == [2, 3, 4]


def test_the_session_lab_names_no_layer() -> None:
    """fixtures/lab.py reaches the layers only through hooks (stackcheck.heal), so a new
    layer's heal step needs no change there."""
    layers = [p.parent.name for p in (REPO / "suites").glob("*/__init__.py")]
    modules = [f"stackcheck.{name}" for name in layers if name != "lab"] + ["stackcheck.faults"]
    found = sorted(m for m in imports(REPO / "fixtures" / "lab.py")
                   if any(_within(m, layer) for layer in modules))
    assert not found, f"fixtures/lab.py imports layer code: {', '.join(found)}"
