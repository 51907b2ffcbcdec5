"""Kubernetes binaries: cache hits, rebuild decisions, the private apt configuration, ldflags.

Fast tests never build; the one marked ``slow`` calls ``ensure_binaries()`` for real (a cache
hit once built on this machine, 10-15 minutes on a fresh one).
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from filelock import FileLock
from rich.console import Console

from stackcheck_builders.kubernetes import (
    ALL_BINARIES,
    KUBE_BINARIES,
    K8sBuildError,
    Progress,
    binaries,
    ensure_binaries,
)
from stackcheck_builders.kubernetes.aptconf import (
    PrivateApt,
    parse_deb822,
    parse_one_line,
    render_sources,
)
from stackcheck_builders.kubernetes.cache import Layout, stale, write_manifest
from stackcheck_builders.kubernetes.cli import k8s_build
from stackcheck_builders.kubernetes.runner import run_logged
from stackcheck_builders.kubernetes.versions import (
    debian_upstream_version,
    is_supported,
    ldflags,
    parse_version,
)

MIRROR = "http://mirror.example/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def _fake_binary(path: Path, version: str = "v1.20.2") -> Path:
    path.write_text(f"#!/bin/sh\necho 'Kubernetes {version}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class RecordingBuilder:
    """Stands in for the real Builder: records what it was asked to build, compiles nothing."""

    calls: ClassVar[list[dict[str, str]]] = []

    def __init__(self, layout: Layout, recipe: object, progress: Progress) -> None:
        self.layout = layout

    def build(self, todo: dict[str, str]) -> None:
        RecordingBuilder.calls.append(dict(todo))
        _fill_cache(self.layout)


def _fill_cache(layout: Layout, version: str = "v1.20.2") -> Path:
    layout.bin.mkdir(parents=True, exist_ok=True)
    for name in ALL_BINARIES:
        _fake_binary(layout.bin / name, version)
    write_manifest(layout.bin, {"version": version, "go_version": "go1.15.15"},
                   {name: {} for name in ALL_BINARIES})
    return layout.bin


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    """An empty user cache, and a Builder that only records (no real build can start)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(binaries, "Builder", RecordingBuilder)
    RecordingBuilder.calls = []
    return Layout.for_version("v1.20.2")


def test_cache_layout_follows_xdg_cache_home(cache: Layout, tmp_path: Path) -> None:
    assert cache.bin == tmp_path / "xdg/stackcheck/kubernetes/v1.20.2/bin"
    assert {cache.src.parent, cache.toolchain.parent, cache.gocache.parent} == {cache.root}


def test_cache_hit_returns_without_building(cache: Layout) -> None:
    _fill_cache(cache)
    folder = ensure_binaries(use_path=False, progress=Progress.quiet())
    assert folder == cache.bin
    assert RecordingBuilder.calls == []


def test_checksum_mismatch_rebuilds_only_that_binary(cache: Layout) -> None:
    _fill_cache(cache)
    (cache.bin / "kubelet").write_text("#!/bin/sh\necho tampered\n")
    assert stale(cache.bin, "v1.20.2") == {"kubelet": "checksum mismatch"}
    ensure_binaries(use_path=False, progress=Progress.quiet())
    assert RecordingBuilder.calls == [{"kubelet": "checksum mismatch"}]


def test_missing_manifest_or_other_version_rebuilds_everything(cache: Layout) -> None:
    assert set(stale(cache.bin, "v1.20.2")) == set(ALL_BINARIES)
    _fill_cache(cache, version="v1.20.1")
    assert set(stale(cache.bin, "v1.20.2").values()) == {"manifest is for v1.20.1"}


def test_a_waiting_process_uses_the_build_it_waited_for(cache: Layout) -> None:
    cache.root.mkdir(parents=True)
    out = io.StringIO()
    results: list[Path] = []
    holder = FileLock(str(cache.lock))
    holder.acquire()
    waiter = threading.Thread(target=lambda: results.append(ensure_binaries(
        use_path=False, progress=Progress(Console(file=out, width=200)))))
    waiter.start()
    time.sleep(0.5)
    assert not results
    _fill_cache(cache)  # "the other process" finishes its build, then unlocks
    holder.release()
    waiter.join(timeout=10)
    assert results == [cache.bin]
    assert RecordingBuilder.calls == []
    assert "another process is building" in out.getvalue()


def test_unbuildable_version_says_what_to_do(cache: Layout) -> None:
    with pytest.raises(K8sBuildError, match="--k8s-bin-dir"):
        ensure_binaries("v1.24.0", use_path=False, progress=Progress.quiet())


def test_supported_binaries_on_path_are_used(cache: Layout, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "path"
    folder.mkdir()
    for name in ALL_BINARIES:
        _fake_binary(folder / name, "v1.21.3")
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    assert ensure_binaries(progress=Progress.quiet()) == folder
    assert RecordingBuilder.calls == []


def test_unsupported_binaries_on_path_are_ignored(cache: Layout, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "path"
    folder.mkdir()
    for name in KUBE_BINARIES:
        _fake_binary(folder / name, "v1.19.7")
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    assert ensure_binaries(progress=Progress.quiet()) == cache.bin
    assert len(RecordingBuilder.calls) == 1


def test_bin_dir_without_pause_gets_a_linked_folder(cache: Layout, tmp_path: Path) -> None:
    _fill_cache(cache)  # pause comes from the cache
    given = tmp_path / "given"
    given.mkdir()
    for name in KUBE_BINARIES:
        _fake_binary(given / name)
    folder = ensure_binaries(bin_dir=given, progress=Progress.quiet())
    assert sorted(p.name for p in folder.iterdir()) == sorted(ALL_BINARIES)
    assert (folder / "kubelet").resolve() == given / "kubelet"
    assert (folder / "pause").resolve() == cache.bin / "pause"


def test_bin_dir_missing_a_binary_is_a_clear_error(cache: Layout, tmp_path: Path) -> None:
    for name in KUBE_BINARIES[:-1]:
        _fake_binary(tmp_path / name)
    with pytest.raises(K8sBuildError, match=r"in .*: missing kube-proxy"):
        ensure_binaries(bin_dir=tmp_path, progress=Progress.quiet())


def test_cli_prints_the_folder(cache: Layout, tmp_path: Path) -> None:
    for name in ALL_BINARIES:
        _fake_binary(tmp_path / name)
    result = CliRunner().invoke(k8s_build, ["--k8s-bin-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path)


SOURCES_LIST = f"""\
# the machine's main archive, one-line format
deb [arch=amd64 signed-by={KEYRING}] {MIRROR} bookworm main contrib
deb {MIRROR}-security bookworm-security main
deb https://vendor.example/apt cloud-sdk-bookworm main
"""

DEB822 = f"""\
Types: deb
URIs: https://nodes.example/node_20.x
Suites: nodistro
Components: main

Types: deb
# a comment inside a stanza
URIs: {MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: {KEYRING}

Types: deb
URIs: {MIRROR}-security
Suites: bookworm-security
Components: main
"""


def _etc(tmp_path: Path, *, one_line: str = "", deb822: str = "") -> tuple[Path, Path]:
    etc = tmp_path / "etc-apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text(one_line)
    if deb822:
        (etc / "sources.list.d" / "debian.sources").write_text(deb822)
    (etc / "sources.list.d" / "other.sources.disabled").write_text(
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nComponents: main\n")
    os_release = tmp_path / "os-release"
    os_release.write_text('PRETTY_NAME="Debian GNU/Linux 12"\nVERSION_CODENAME=bookworm\n')
    return etc, os_release


def _stanza(kind: str, suite: str, signed: bool = True) -> str:
    text = f"Types: {kind}\nURIs: {MIRROR}\nSuites: {suite}\nComponents: main\n"
    return text + (f"Signed-By: {KEYRING}\n" if signed else "")


@pytest.mark.parametrize("fmt", ["one-line", "deb822"])
def test_private_apt_uses_the_machines_mirror_for_other_suites(tmp_path: Path, fmt: str) -> None:
    kwargs = {"one_line": SOURCES_LIST} if fmt == "one-line" else {"deb822": DEB822}
    etc, os_release = _etc(tmp_path, **kwargs)
    root = tmp_path / "private"
    apt = PrivateApt.from_machine(root, [("deb-src", "bookworm"), ("deb", "bullseye")],
                                  etc=etc, os_release=os_release)
    assert apt.sources == _stanza("deb-src", "bookworm") + "\n" + _stanza("deb", "bullseye")


def test_one_line_entry_without_signed_by(tmp_path: Path) -> None:
    etc, os_release = _etc(tmp_path, one_line=f"deb {MIRROR} bookworm main\n")
    apt = PrivateApt.from_machine(tmp_path / "p", [("deb", "bullseye")], etc=etc,
                                  os_release=os_release)
    assert apt.sources == _stanza("deb", "bullseye", signed=False)


def test_no_debian_archive_is_a_clear_error(tmp_path: Path) -> None:
    etc, os_release = _etc(tmp_path, one_line="deb https://vendor.example/apt stable-ish main\n")
    with pytest.raises(K8sBuildError, match="no Debian archive"):
        PrivateApt.from_machine(tmp_path / "p", [("deb", "bullseye")], etc=etc,
                                os_release=os_release)


def test_parsers_read_both_formats() -> None:
    (entry,) = [e for e in parse_one_line(SOURCES_LIST) if e.suites == ("bookworm",)]
    assert (entry.uris, entry.components, entry.signed_by) == ((MIRROR,), ("main", "contrib"),
                                                               KEYRING)
    disabled = parse_deb822(f"Enabled: no\nTypes: deb\nURIs: {MIRROR}\nSuites: x\n")
    assert not disabled[0].enabled


def test_inline_signed_by_key_survives_the_round_trip() -> None:
    key = "\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n.\nmQINBGPL\n-----END PGP PUBLIC KEY BLOCK-----"
    text = f"Types: deb\nURIs: {MIRROR}\nSuites: bookworm\nComponents: main\nSigned-By:"
    text += key.replace("\n", "\n ")
    (entry,) = parse_deb822(text)
    assert entry.signed_by == key
    rendered = render_sources(MIRROR, entry.signed_by, [("deb", "bullseye")])
    assert parse_deb822(rendered)[0].signed_by == key


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def test_private_apt_lives_under_its_root_and_never_touches_etc_apt(tmp_path: Path) -> None:
    before = _snapshot(Path("/etc/apt")) if Path("/etc/apt").is_dir() else {}
    root = tmp_path / "private"
    apt = PrivateApt(root, _stanza("deb", "bullseye"))
    apt.write()
    assert _snapshot(Path("/etc/apt")) == before if before else True
    options = apt.options()
    values = dict(opt.split("=", 1) for opt in options[1::2])
    assert set(values) == {"Dir::Etc::SourceList", "Dir::Etc::SourceParts",
                           "Dir::State::Lists", "Dir::Cache"}
    assert all(Path(v).is_relative_to(root) for v in values.values())
    assert (root / "sources.list.d" / "stackcheck.sources").read_text() == apt.sources
    written = {p for p in tmp_path.rglob("*")}
    assert all(p.is_relative_to(root) for p in written)
    if shutil.which("apt-config"):  # apt itself resolves its folders to the private root
        out = subprocess.run(["apt-config", *options, "shell", "PARTS", "Dir::Etc::SourceParts/d",
                              "LISTS", "Dir::State::Lists/d"], capture_output=True, text=True)
        assert f"PARTS='{root}/sources.list.d/'" in out.stdout
        assert f"LISTS='{root}/lists/'" in out.stdout


def test_ldflags_stamp_both_version_packages() -> None:
    flags = ldflags("v1.20.2", "2025-05-20T00:00:00Z")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert (f"-X {package}.gitVersion=v1.20.2 -X {package}.gitMajor=1 "
                f"-X {package}.gitMinor=20 -X {package}.gitTreeState=clean "
                f"-X {package}.buildDate=2025-05-20T00:00:00Z") in flags
    assert flags.startswith("-s -w ")


def test_versions() -> None:
    assert debian_upstream_version("1.20.5+really1.20.2-1.1+deb12u1") == "1.20.2"
    assert debian_upstream_version("2:1.15.15-1~deb11u4") == "1.15.15"
    assert parse_version("Kubernetes v1.20.2") == (1, 20, 2)
    assert is_supported((1, 29, 0)) and not is_supported((1, 19, 9))
    assert not is_supported(parse_version("garbage"))


def test_a_failing_command_reports_its_last_lines(tmp_path: Path) -> None:
    script = "for i in 1 2 3; do echo line$i; done; echo 'cmd/x.go:1: undefined: Y' >&2; exit 3"
    with pytest.raises(K8sBuildError) as info:
        run_logged(["sh", "-c", script], title="go build x", log=tmp_path / "x.log",
                   progress=Progress.quiet(), env=os.environ)
    first, *rest = str(info.value).splitlines()
    assert first.startswith("go build x failed (exit status 3); full log:")
    assert rest[-1].strip() == "cmd/x.go:1: undefined: Y"


def test_long_commands_get_heartbeats(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = Progress(Console(file=out, width=200), heartbeat=0.5)
    stats = run_logged(["sleep", "1.6"], title="go build y", log=tmp_path / "y.log",
                       progress=progress, env=os.environ)
    assert stats.seconds >= 1.6
    assert out.getvalue().count("… go build y:") >= 1


@pytest.mark.slow
def test_real_binaries_report_v1_20_2() -> None:
    """Builds on a fresh machine (10-15 min on 2 cores); a cache hit afterwards."""
    if stale(Layout.for_version("v1.20.2").bin, "v1.20.2") and not shutil.which("apt-get"):
        pytest.skip("no cached v1.20.2 binaries and no apt-get to build them")
    folder = ensure_binaries(use_path=False)
    assert set(ALL_BINARIES) <= {p.name for p in folder.iterdir()}
    client = subprocess.run([folder / "kubectl", "version", "--client"],
                            capture_output=True, text=True, timeout=60)
    assert 'GitVersion:"v1.20.2"' in client.stdout, client.stdout + client.stderr
    server = subprocess.run([folder / "kube-apiserver", "--version"],
                            capture_output=True, text=True, timeout=60)
    assert server.stdout.strip() == "Kubernetes v1.20.2", server.stdout + server.stderr
