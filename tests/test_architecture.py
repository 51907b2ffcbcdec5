"""The import direction, checked on the source (in the spirit of Tempest's hacking checks).

The layers, bottom up: ``stackcheck/`` (the library: talks to and parses a lab, no pytest)
<- ``builders/`` and ``provisioners/`` <- ``reports/`` (the pytest plugin for evidence and
results, and the run's shared state) <- ``fixtures/`` (the pytest plugins, the options one
included) <- ``suites/``; ``cli/`` (the ``stackcheck`` command) sits on top and mounts other
packages' commands through entry points. The rules:

- the library imports nothing above it (``builders``, ``provisioners``, ``reports``,
  ``fixtures``, ``suites``, ``cli``), and not pytest; the CLI and the pytest plugin are
  not in it (the console script and the ``pytest11`` entry point point above it);
- builders import only the library;
- reports never import fixtures, suites or the CLI;
- fixtures never import suites; no import cycle between modules of ``fixtures/``;
- no suite imports another suite (``suites/<layer>/`` is one suite, sub-folders included);
- no provisioner imports a sibling provisioner (``provisioners/<a>/`` or ``provisioners/<a>.py``
  never imports ``provisioners.<b>``): what two share lives in the kit ``provisioners/hostlab``
  (which imports no provisioner) or in ``provisioners/base.py``;
- the library's top level is its core (``CORE``); a layer's model, clients, probes and
  analysis live in its package ``stackcheck/<layer>/``;
- the modules that read the layer descriptions name no layer (``LAYER_READERS``).

An exception is listed in ``ALLOWED`` with its reason. Every import is read with ``ast``,
relative imports resolved, including those inside functions (a lazy import is an import).
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("stackcheck", "builders", "provisioners", "fixtures", "suites", "reports", "cli")
LIBRARY_MUST_NOT_IMPORT = ("builders", "provisioners", "fixtures", "suites", "reports", "cli",
                           "pytest", "_pytest")
#: what a builder must not import: every top-level package of the project but the library
BUILDERS_MUST_NOT_IMPORT = ("provisioners", "fixtures", "suites", "reports", "cli")
REPORTS_MUST_NOT_IMPORT = ("fixtures", "suites", "cli")
#: what every provisioner may import under ``provisioners/``: the interface and the kit for
#: labs on this machine
PROVISIONERS_SHARED = ("base", "hostlab")

# (importing file, imported module) -> why it is allowed
ALLOWED: dict[tuple[str, str], str] = {
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


def folder_module(module: str) -> str:
    """The module ``stackcheck_fixtures.lab`` is the file fixtures/lab.py: the rules speak of
    the repository's folders; a folder's import name is ``stackcheck_<folder>`` (setup.py)."""
    top, dot, rest = module.partition(".")
    if top.startswith("stackcheck_"):
        return top.removeprefix("stackcheck_") + dot + rest
    return module


def imports(path: Path, root: Path = REPO, names: bool = False) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` yields ``a.b``, and ``a.b.c`` too
    with ``names``: ``c`` may be a module)."""
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
            if names:
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return {folder_module(module) for module in found}


def _sources() -> list[Path]:
    return sorted(p for top in PACKAGES for p in (REPO / top).rglob("*.py"))


def _suite_of(module_or_path: str) -> str | None:
    parts = module_or_path.replace("/", ".").split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "suites" else None


def _within(module: str, top: str) -> bool:
    return module == top or module.startswith(top + ".")


def _provisioner_of(module_or_path: str) -> str | None:
    """``local`` for ``provisioners/local/build.py`` or ``stackcheck_provisioners.local.build``;
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
            elif top == "builders" and any(_within(module, t) for t in BUILDERS_MUST_NOT_IMPORT):
                rule = "builders import only the library"
            elif top == "reports" and any(_within(module, t) for t in REPORTS_MUST_NOT_IMPORT):
                rule = "reports never import fixtures, suites or the CLI"
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


def cycles(top: str, root: Path = REPO) -> list[list[str]]:
    """Import cycles between the modules of package folder ``top`` (lazy imports count)."""
    paths = {_module_name(p, root): p for p in sorted((root / top).rglob("*.py"))}
    graph = {name: sorted(m for m in imports(path, root, names=True) if m in paths and m != name)
             for name, path in paths.items()}
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycle = stack[stack.index(name):]
            turn = cycle.index(min(cycle))
            cycle = cycle[turn:] + cycle[:turn]
            if cycle not in found:
                found.append(cycle)
            return
        if name in done:
            return
        for imported in graph[name]:
            visit(imported, [*stack, name])
        done.add(name)

    for name in graph:
        visit(name, [])
    return found


def test_no_import_cycle_between_fixtures() -> None:
    found = cycles("fixtures")
    assert not found, "import cycles in fixtures/: " + "; ".join(
        " -> ".join([*c, c[0]]) for c in found)


def test_the_cycle_check_sees_a_lazy_cycle(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("from pkg.b import x\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    from pkg import a\n")
    (tmp_path / "pkg" / "c.py").write_text("import pkg.a\n")
    assert cycles("pkg", tmp_path) == [["pkg.a", "pkg.b"]]


def test_the_command_line_and_the_pytest_plugin_live_above_the_library() -> None:
    """The ``stackcheck`` script and the ``pytest11`` plugin are glue: not in ``stackcheck/``."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    targets = {**project["scripts"], **project["entry-points"]["pytest11"]}
    inside = sorted(f"{name} = {value}" for name, value in targets.items()
                    if _within(value.split(":")[0], "stackcheck"))
    assert not inside, f"glue inside the library: {', '.join(inside)}"
    assert targets["stackcheck"] == "stackcheck_cli.main:main"


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
    """Only ``reports/`` calls ``allure.attach``: everything else uses
    ``stackcheck_reports.evidence``, which redacts (the ruff rule TID251 in pyproject.toml says the
    same in an editor)."""
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


#: the modules that read the layer descriptions (stackcheck.layers) instead of naming layers
LAYER_READERS = ("stackcheck/preflight.py", "stackcheck/hostlayers.py", "stackcheck/services.py",
                 "fixtures/preflight.py", "fixtures/labels.py", "reports/categories.py",
                 *(f"stackcheck/picture/{m}.py"
                   for m in ("__init__", "model", "probe", "svg", "runfiles")))


def _string_constants(path: Path) -> set[str]:
    """Every string literal of a module but its docstrings."""
    tree = ast.parse(path.read_text())
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs}


def test_the_readers_of_layer_descriptions_name_no_layer() -> None:
    """The preflight, the blocked-check logic, the categories, the labels and the lab
    picture read each layer's description: adding a layer is a folder under suites/ and one
    description."""
    from stackcheck import layers

    named = {*layers.names(), *layers.health_lines(), *layers.known_roles()} - {layers.SSH}
    found = {f"{module}: {text!r}" for module in LAYER_READERS
             for text in _string_constants(REPO / module) & named}
    assert not found, "modules that should read stackcheck.layers name a layer:\n" + "\n".join(
        sorted(found))


# The library's top level: its core, each module with why it belongs to no one layer. A new
# top-level module is a conscious choice: the core (listed here, with its reason) or a
# layer's (``stackcheck/<layer>/``).
CORE: dict[str, str] = {
    "__init__": "the package and its version",
    "lab": "the Lab model and the inventory every layer reads",
    "ssh": "SSH to the hosts, for every layer",
    "waits": "bounded polling, for every layer",
    "locks": "the cross-process lab lock",
    "journal": "a journal on disk, under the fault and the atomic journals",
    "errors": "one-line words for every client library's errors",
    "faults": "stopping and restarting any layer's services, journaled",
    "heal": "the heal hooks every layer registers",
    "claims": "what a check reads or disrupts, held as locks across workers",
    "waves": "per-host disruptive work in waves that keep every layer's quorum",
    "sampling": "which pairs and hosts the checks sample at scale (the lab's racks)",
    "pingmatrix": "all-pairs probes: the host overlay (flannel) and the pods (kubernetes)",
    "services": "the host's own word about any service (its service manager and log)",
    "preflight": "the preflight runner, over every layer",
    "hostlayers": "the preflight's one-command probe of the layers on each host",
    "provisioner": "the provisioner contract and its registry",
    "provisioner_types": "the contract's plain types, light enough for a host-side control CLI",
    "layers": "the layer descriptions' registry that the core reads instead of naming layers",
}

# The library's packages: one per layer (a folder under suites/ of the same name), and those
# that serve every layer, each with why.
NOT_A_LAYER: dict[str, str] = {
    "picture": "draws the whole lab, every layer in one picture",
}


def _layers() -> set[str]:
    return {p.parent.name for p in (REPO / "suites").glob("*/__init__.py")}


def test_the_library_top_level_is_its_core() -> None:
    top = {p.stem for p in (REPO / "stackcheck").glob("*.py")}
    new = sorted(top - CORE.keys())
    assert not new, (
        f"new top-level module(s) in stackcheck/: {', '.join(new)}; a layer's model, clients, "
        f"probes and analysis go to stackcheck/<layer>/, the core is listed in CORE with why")
    gone = sorted(CORE.keys() - top)
    assert not gone, f"no longer in stackcheck/, remove from CORE: {', '.join(gone)}"


def test_the_library_packages_are_layers() -> None:
    packages = {p.parent.name for p in (REPO / "stackcheck").glob("*/__init__.py")}
    strays = sorted(packages - _layers() - NOT_A_LAYER.keys())
    assert not strays, (f"stackcheck/{', stackcheck/'.join(strays)}: no layer of that name "
                        "(suites/<layer>/); name it after its layer or list it in NOT_A_LAYER")
    assert not NOT_A_LAYER.keys() & _layers(), "a layer's package is not in NOT_A_LAYER"
    assert NOT_A_LAYER.keys() <= packages, "NOT_A_LAYER names a package that is gone"


def test_the_core_imports_no_layer() -> None:
    """The library's core reaches a layer only through its registered description
    (stackcheck.layers), never by importing the layer's package."""
    layer_packages = [f"stackcheck.{name}" for name in _layers() if name != "lab"]
    found = sorted(f"stackcheck/{path.name}: {module}"
                   for path in (REPO / "stackcheck").glob("*.py") for module in imports(path)
                   if any(_within(module, package) for package in layer_packages))
    assert not found, "the core imports a layer's package:\n" + "\n".join(found)
