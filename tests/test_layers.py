"""One description per layer: a layer registered from another package (a dist-info on the
path, as ``pip install`` would put it) is read by the inventory's roles, the preflight, the
blocked-check logic, the Allure categories and the lab picture, without any of them naming
it."""

from __future__ import annotations

import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackcheck import layers, preflight
from stackcheck.lab import Lab
from stackcheck.picture import gather, render
from stackcheck_fixtures.preflight import blocking_cause
from stackcheck_reports.categories import categories_json, classify

REPO = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"

OUTSIDE = '''
"""CoreDNS as a layer shipped outside stackcheck: one description, one preflight, one part
of the lab picture."""
from stackcheck.layers import Health, Layer
from stackcheck.picture.model import BAD, OK, UNKNOWN, LayerView, Line
from stackcheck.preflight import DOWN, LayerHealth, LayerPreflight


class DnsPreflight(LayerPreflight):
    def probes(self, lab, run_id):
        return {"resolve": lambda: "kubernetes.default does not resolve (SERVFAIL)"}

    def judge(self, seen):
        why = seen.probed["resolve"]
        return {"dns": LayerHealth(DOWN, why, ["h1"])} if why else {}


class DnsPicture:
    """Each resolver's answer for kubernetes.default (recorded: no lab here)."""

    def probe(self, lab, probing):
        return {"h1": "SERVFAIL"}

    def view(self, hosts, found):
        part = LayerView()
        for host in hosts:
            if "dns" not in host.roles:
                continue
            said = (found or {}).get(host.name)
            if said is None:
                part.hosts[host.name] = [Line("coredns: not read", UNKNOWN)]
            elif said == "NOERROR":
                part.hosts[host.name] = [Line("coredns: resolves", OK)]
            else:
                part.hosts[host.name] = [Line(f"coredns: {said}", BAD, strong=True)]
                part.problems.append(f"{host.name}: kubernetes.default does not resolve ({said})")
        return part


PREFLIGHT = DnsPreflight()
PICTURE = DnsPicture()
LAYER = Layer(name="dns", title="cluster DNS", order=25, roles={"dns": ("coredns",)},
              services=("coredns",), units={"coredns": "coredns"},
              health=(Health("dns", after=("kubernetes",)),),
              preflight="outside_dns:PREFLIGHT", fixture_needs={"resolver": ("dns",)},
              picture="outside_dns:PICTURE")
'''


def _clear() -> None:
    layers.layers.cache_clear()
    layers.health_lines.cache_clear()


@pytest.fixture
def outside_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    site = tmp_path / "site"
    dist = site / "outside_dns-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: outside-dns\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[stackcheck.layers]\ndns = outside_dns:LAYER\n")
    (site / "outside_dns.py").write_text(OUTSIDE)
    monkeypatch.syspath_prepend(str(site))
    _clear()
    yield
    _clear()


def _lab(ssh_files: Path, roles: list[str]) -> Lab:
    return Lab.model_validate({
        "name": "t", "ssh": {"known_hosts": str(ssh_files / "known_hosts"), "port": 9,
                             "connect_timeout": 2},
        "hosts": [{"name": "h1", "address": "127.0.0.1", "roles": roles}],
    })


def test_every_suite_folder_has_a_description() -> None:
    folders = {p.parent.name for p in (REPO / "suites").glob("*/__init__.py")}
    assert folders == set(layers.names())


def test_verdict_lines_come_after_what_explains_them() -> None:
    lines = layers.health_lines()
    assert lines[0] == layers.SSH
    assert lines.index("runtime") < lines.index("kubelet")  # a stopped runtime is the cause
    assert lines.index("etcd") < lines.index("kubernetes")


def test_an_outside_layer_is_read_everywhere(outside_layer: None, ssh_files: Path) -> None:
    assert "dns" in layers.known_roles()
    lab = _lab(ssh_files, ["dns"])  # the inventory accepts its role
    assert lab.control_for(lab.hosts[0]).units["coredns"] == "coredns"
    lines = layers.health_lines()
    assert lines.index("kubernetes") < lines.index("dns") < lines.index("flannel")
    assert "blocked by dns" in [c["name"] for c in categories_json()]
    assert classify("failed", "blocked: needs dns: SERVFAIL") == "blocked by dns"

    verdict = preflight.run(lab)
    assert verdict.layers["dns"].summary == "kubernetes.default does not resolve (SERVFAIL)"
    item = types.SimpleNamespace(fixturenames=["resolver"], path=REPO / "suites" / "x.py",
                                 iter_markers=lambda name: [], callspec=None)
    assert blocking_cause(item, lab, verdict) == (
        "dns", "needs dns: kubernetes.default does not resolve (SERVFAIL)")


def test_an_outside_layer_draws_its_part_of_the_picture(outside_layer: None,
                                                       ssh_files: Path) -> None:
    lab = _lab(ssh_files, ["dns"])
    snap = gather(lab)  # only the outside layer has something to read in this lab
    assert list(snap.parts) == ["dns"]
    assert "h1: kubernetes.default does not resolve (SERVFAIL)" in snap.problems()
    root = ET.fromstring(render(snap))
    [line] = [t for t in root.iter(f"{SVG}text") if t.text == "coredns: SERVFAIL"]
    assert line.get("class") == "line bad" and line.get("font-weight") == "bold"
    assert [r.get("class") for r in root.iter(f"{SVG}rect")
            if "host" in r.get("class", "")] == ["host failed"]
    bare = gather(lab, probe=False)  # not probed: grey, no problem
    assert [x.text for x in bare.parts["dns"].hosts["h1"]] == ["coredns: not read"]
    assert bare.problems() == []
    assert "dns" not in gather(lab, layers={"etcd"}, probe=False).parts  # a partial run


def test_without_it_nothing_knows_the_layer(ssh_files: Path) -> None:
    assert "dns" not in layers.known_roles()
    with pytest.raises(ValueError, match="unknown role"):
        _lab(ssh_files, ["dns"])
    assert "dns" not in gather(_lab(ssh_files, []), probe=False).parts
