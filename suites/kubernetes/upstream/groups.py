"""Focus groups: which upstream e2e specs a group runs, the images they need, ginkgo arguments.

One YAML file per group and Kubernetes version, ``<version>/<group>.yaml`` beside this module:

``focus`` / ``skip``: ginkgo regular expressions selecting the group's specs, as upstream
names them; ``timeout``: seconds for the whole group; ``flake_attempts``: ginkgo's attempts
per spec (a spec that passes on a later attempt is reported flaky); ``specs``: the curated
list, each spec name with the e2e images it needs (names from ``images.yaml``, the version's
``test/utils/image/manifest.go``); ``only_listed``: run only listed specs (a spec the focus
selects but the list lacks is reported as skipped, never run); ``notes``: spec-name
substring -> a note shown with those specs (e.g. a known wait).

A version without a curated file gets the **generic** group of that name (:data:`GENERIC`):
upstream's own tags (``[Conformance]``, ``[sig-scheduling]``) select the specs, every selected
spec runs (a spec whose image cannot be pulled is reported skipped with that reason), and
the group says it is generic. Kubernetes v1.25 and later build e2e.test with ginkgo v2, which
matches focus against the spec text alone (no ``Kubernetes e2e suite [Top Level]`` prefix) and
spells its flags in kebab case: :func:`ginkgo_major` picks the dialect by version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
GROUPS = ("scheduling", "node", "conformance")
#: ginkgo v1 matches focus/skip against "<suite description> [Top Level] <spec name>".
MATCH_PREFIX = "Kubernetes e2e suite [Top Level] "
#: ginkgo v2 (Kubernetes >= 1.25) matches against the spec text alone
MATCH_PREFIX_V2 = ""
GINKGO_V2_SINCE = (1, 25)
_SKIP_ALWAYS = (r"\[Disruptive\]", r"\[Flaky\]", r"\[Feature:")
#: upstream's own tags, for versions without a curated list (no image list: all specs run)
#: name -> (focus, timeout in seconds, description)
GENERIC: dict[str, tuple[str, float, str]] = {
    "scheduling": (r"\[sig-scheduling\]", 2700.0, "SIG Scheduling's e2e specs"),
    "node": (r"(?:\[k8s\.io\]|\[sig-node\]|\[sig-apps\]).*\[Conformance\]", 3600.0,
             "node and workload [Conformance] specs"),
    "conformance": (r"\[Conformance\]", 7200.0,
                    "Kubernetes Conformance ([Conformance], not [Disruptive])"),
}
SERIAL = "[Serial]"
_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


class GroupError(ValueError):
    """A focus group that does not exist or whose file is malformed."""


@dataclass(frozen=True)
class FocusGroup:
    """One group of upstream specs for one e2e.test version."""

    name: str
    version: str
    focus: str
    skip: tuple[str, ...] = ()
    timeout: float = 3600.0
    flake_attempts: int = 1
    only_listed: bool = False
    specs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    description: str = ""
    curated: bool = True  # False: the generic group (no curated list for this version)
    prefix: str = MATCH_PREFIX  # what ginkgo puts before a spec name when it matches

    @property
    def kind(self) -> str:
        """Which list the run used, in words (shown in the report)."""
        if self.curated:
            return f"curated list for {self.version} ({self.name}.yaml)"
        known = ", ".join(curated_versions()) or "none"
        return (f"generic {self.name} group (upstream tags, focus {self.focus}): no curated "
                f"list for {self.version}; curated: {known}")

    def selects(self, name: str) -> bool:
        """Whether ginkgo's focus and skip would run the spec ``name``."""
        text = self.prefix + name
        if not re.search(self.focus, text):
            return False
        return not (self.skip and re.search("|".join(self.skip), text))

    def needs(self, name: str) -> tuple[str, ...]:
        """Image references the spec needs (empty when the spec is not in the list)."""
        return tuple(self.images[short] for short in self.specs.get(name, ()))

    def notes_for(self, name: str) -> list[str]:
        return [note for key, note in self.notes.items() if key in name]


def available(version: str) -> list[str]:
    """Groups with a curated file for ``version``."""
    return [g for g in GROUPS if (HERE / version / f"{g}.yaml").is_file()]


def curated_versions(base: Path = HERE) -> list[str]:
    return sorted(p.name for p in base.iterdir() if p.is_dir() and p.name.startswith("v"))


def ginkgo_major(version: str) -> int:
    """The ginkgo major version e2e.test ``version`` is built with (2 from Kubernetes 1.25)."""
    m = re.match(r"v?(\d+)\.(\d+)", version)
    if m is None:
        raise GroupError(f"e2e.test version {version!r} is not vMAJOR.MINOR[.PATCH]")
    return 2 if (int(m[1]), int(m[2])) >= GINKGO_V2_SINCE else 1


def generic_group(name: str, version: str) -> FocusGroup:
    """The generic group ``name`` (upstream's tags) for a version with no curated list."""
    if name not in GENERIC:
        raise GroupError(f"no upstream focus group {name!r} (groups: {', '.join(GROUPS)})")
    focus, timeout, description = GENERIC[name]
    return FocusGroup(
        name=name, version=version, focus=focus, skip=_SKIP_ALWAYS, timeout=timeout,
        flake_attempts=2, only_listed=False,
        description=f"{description} (generic: no curated list for {version})", curated=False,
        prefix=MATCH_PREFIX if ginkgo_major(version) == 1 else MATCH_PREFIX_V2)


def load_group(name: str, version: str, base: Path = HERE) -> FocusGroup:
    """The group ``name`` for e2e.test ``version``: its curated file, else the generic group
    of that name; GroupError names the file and the problem."""
    path = base / version / f"{name}.yaml"
    if not path.is_file():
        if (base / version).is_dir() and name not in GENERIC:
            known = ", ".join(available(version)) or "none"
            raise GroupError(f"no upstream focus group {name!r} for {version} (curated: {known})")
        return generic_group(name, version)
    try:
        data = yaml.safe_load(path.read_text()) or {}
        images = yaml.safe_load((base / version / "images.yaml").read_text()) or {}
        specs = {str(k): tuple(v or ()) for k, v in (data.get("specs") or {}).items()}
        group = FocusGroup(
            name=name, version=version, focus=str(data["focus"]),
            skip=tuple(data.get("skip") or ()), timeout=float(data.get("timeout", 3600)),
            flake_attempts=int(data.get("flake_attempts", 1)),
            only_listed=bool(data.get("only_listed", False)), specs=specs,
            images={str(k): str(v) for k, v in images.items()},
            notes={str(k): str(v) for k, v in (data.get("notes") or {}).items()},
            description=str(data.get("description", "")),
        )
        for pattern in (group.focus, *group.skip):
            re.compile(pattern)
    except (OSError, yaml.YAMLError, KeyError, TypeError, re.error) as exc:
        raise GroupError(f"{path}: {type(exc).__name__}: {exc}") from None
    unknown = sorted({i for needs in specs.values() for i in needs} - set(group.images))
    if unknown:
        raise GroupError(f"{path}: images not in images.yaml: {', '.join(unknown)}")
    return group


def escape(name: str) -> str:
    """A spec name as a literal in a Go (RE2) and Python regular expression."""
    return _SPECIAL.sub(r"\\\1", name)


def exact_focus(names: Iterable[str], prefix: str = MATCH_PREFIX) -> str:
    """A ginkgo focus that selects exactly the specs ``names``."""
    alternatives = "|".join(escape(n) for n in sorted(set(names)))
    return f"^{escape(prefix)}(?:{alternatives})$"


def is_serial(name: str) -> bool:
    return SERIAL in name


def ginkgo_args(group: FocusGroup) -> list[str]:
    """The group's own selection, for a dry run listing what it selects."""
    args = [f"--ginkgo.focus={group.focus}"]
    if group.skip:
        args.append(f"--ginkgo.skip={'|'.join(group.skip)}")
    return args


def invocation_args(names: Iterable[str], prefix: str = MATCH_PREFIX) -> list[str]:
    """Arguments that run exactly ``names`` (one invocation: all serial, or none serial)."""
    return [f"--ginkgo.focus={exact_focus(names, prefix)}"]


@dataclass
class Plan:
    """What one group run does with each selected spec."""

    parallel: list[str] = field(default_factory=list)  # no [Serial]: one invocation
    serial: list[str] = field(default_factory=list)  # [Serial]: a second invocation, alone
    skipped: dict[str, str] = field(default_factory=dict)  # name -> reason

    @property
    def runnable(self) -> list[str]:
        return self.parallel + self.serial


def plan(group: FocusGroup, selected: Iterable[str], missing: dict[str, list[str]],
         *, run_unlisted: bool = False) -> Plan:
    """Split the specs ``selected`` (by the group's focus/skip) into invocations and skips.

    ``missing``: image reference -> nodes that lack it. A spec needing such an image is
    skipped with that reason; with ``only_listed`` (unless ``run_unlisted``) an unlisted spec
    is skipped too.
    """
    result = Plan()
    for name in sorted(set(selected)):
        absent = {ref: missing[ref] for ref in group.needs(name) if ref in missing}
        if absent:
            result.skipped[name] = "needs image(s) not on every node: " + "; ".join(
                f"{ref} (missing on {', '.join(nodes)})" for ref, nodes in sorted(absent.items()))
        elif group.only_listed and not run_unlisted and name not in group.specs:
            result.skipped[name] = (f"not in the curated offline list of {group.version} "
                                    f"({group.name}.yaml): not verified to run with only pause "
                                    "and busybox; --upstream-unlisted runs it")
        elif is_serial(name):
            result.serial.append(name)
        else:
            result.parallel.append(name)
    return result
