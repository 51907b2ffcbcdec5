"""A private apt configuration: the machine's own Debian mirror, other suites, own lists and cache.

Reads /etc/apt to find the mirror the machine already uses and never writes there: sources,
package lists and downloads all live under the private root, passed to apt with ``-o``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stackcheck_builders.kubernetes.errors import K8sBuildError

SYSTEM_APT = Path("/etc/apt")
OS_RELEASE = Path("/etc/os-release")
DEBIAN_CODENAMES = frozenset(
    {"buster", "bullseye", "bookworm", "trixie", "forky", "sid",
     "oldoldstable", "oldstable", "stable", "testing", "unstable"}
)


@dataclass(frozen=True)
class AptSource:
    """One sources entry, whichever format it came from."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None
    enabled: bool = True


def parse_one_line(text: str) -> list[AptSource]:
    """Entries of a ``sources.list`` file: ``deb [signed-by=K] URI SUITE COMPONENT...``."""
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        options: dict[str, str] = {}
        rest = rest.strip()
        if rest.startswith("["):
            opts, _, rest = rest[1:].partition("]")
            for item in opts.split():
                key, _, value = item.partition("=")
                options[key.lower()] = value
        words = rest.split()
        if kind not in ("deb", "deb-src") or len(words) < 2:
            continue
        entries.append(AptSource((kind,), (words[0],), (words[1],), tuple(words[2:]),
                                 options.get("signed-by")))
    return entries


def _paragraphs(text: str) -> Iterable[dict[str, str]]:
    fields: dict[str, str] = {}
    key = None
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, None
        elif raw[0] in " \t" and key:
            fields[key] += "\n" + raw.strip()
        elif ":" in raw:
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()


def parse_deb822(text: str) -> list[AptSource]:
    """Entries of a deb822 ``.sources`` file."""
    entries = []
    for fields in _paragraphs(text):
        entries.append(AptSource(
            tuple(fields.get("types", "").split()),
            tuple(fields.get("uris", "").split()),
            tuple(fields.get("suites", "").split()),
            tuple(fields.get("components", "").split()),
            fields.get("signed-by") or None,
            fields.get("enabled", "yes").strip().lower() not in ("no", "false", "0"),
        ))
    return entries


def read_sources(etc: Path = SYSTEM_APT) -> list[AptSource]:
    """Every entry the machine's apt reads (``sources.list``, ``*.list``, ``*.sources``)."""
    entries = []
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file() or path.suffix not in (".list", ".sources"):
            continue
        text = path.read_text(errors="replace")
        entries += parse_deb822(text) if path.suffix == ".sources" else parse_one_line(text)
    return entries


def machine_codename(os_release: Path = OS_RELEASE) -> str | None:
    """``VERSION_CODENAME`` from os-release (``bookworm``), if any."""
    try:
        for line in os_release.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "VERSION_CODENAME":
                return value.strip().strip('"') or None
    except OSError:
        pass
    return None


def debian_mirror(entries: list[AptSource], codename: str | None) -> tuple[str, str | None]:
    """(URI, Signed-By) of the Debian archive the machine uses: an entry for its own suite."""
    usable = [e for e in entries if e.enabled and "main" in e.components and e.uris
              and {"deb", "deb-src"} & set(e.types)]
    preferred = [{codename}] if codename else []
    for wanted in [*preferred, DEBIAN_CODENAMES]:  # the machine's own suite first
        for entry in usable:
            if wanted & set(entry.suites):
                return entry.uris[0], entry.signed_by
    raise K8sBuildError(
        f"no Debian archive found in {SYSTEM_APT}/sources.list or sources.list.d "
        f"(looked for a 'main' entry of suite {codename or 'bookworm'}): cannot fetch sources"
    )


def render_sources(uri: str, signed_by: str | None, wanted: Iterable[tuple[str, str]]) -> str:
    """A deb822 sources file with one stanza per (type, suite) on ``uri``, component main."""
    stanzas = []
    for kind, suite in wanted:
        lines = [f"Types: {kind}", f"URIs: {uri}", f"Suites: {suite}", "Components: main"]
        if signed_by:
            first, *rest = signed_by.split("\n")
            lines += [f"Signed-By: {first}", *(" " + (part or ".") for part in rest)]
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


class PrivateApt:
    """apt-get/apt-cache with their own sources, lists and cache under ``root``."""

    def __init__(self, root: Path, sources: str) -> None:
        self.root = root
        self.sources = sources

    @classmethod
    def from_machine(
        cls, root: Path, wanted: Iterable[tuple[str, str]], *,
        etc: Path = SYSTEM_APT, os_release: Path = OS_RELEASE,
    ) -> PrivateApt:
        """Same mirror as the machine's own sources, for the (type, suite) pairs in ``wanted``."""
        uri, signed_by = debian_mirror(read_sources(etc), machine_codename(os_release))
        return cls(root, render_sources(uri, signed_by, wanted))

    def options(self) -> list[str]:
        settings = {
            "Dir::Etc::SourceList": self.root / "sources.list",
            "Dir::Etc::SourceParts": self.root / "sources.list.d",
            "Dir::State::Lists": self.root / "lists",
            "Dir::Cache": self.root / "cache",
        }
        return [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]

    def write(self) -> None:
        """Create the private tree; rewrite the sources only when they changed."""
        for sub in ("sources.list.d", "lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "sources.list").write_text("")
        target = self.root / "sources.list.d" / "stackcheck.sources"
        if not target.exists() or target.read_text() != self.sources:
            target.write_text(self.sources)

    def run(self, tool: str, *args: str, cwd: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``tool`` (apt-get, apt-cache) with the private options; raise on failure."""
        argv = [tool, *self.options(), *args]
        env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
        try:
            result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                                    timeout=timeout)
        except FileNotFoundError:
            raise K8sBuildError(f"{tool} not found: this build needs Debian's apt") from None
        except subprocess.TimeoutExpired:
            raise K8sBuildError(f"{tool} {' '.join(args)} timed out after {timeout:g}s") from None
        if result.returncode != 0:
            errors = [ln for ln in result.stderr.splitlines() if ln.startswith("E:")]
            last = (errors or result.stderr.strip().splitlines() or ["?"])[-1]
            raise K8sBuildError(f"{tool} {' '.join(args)} failed: {last}")
        return result
