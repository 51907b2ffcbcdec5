"""The HTML report of a small run, looked at in headless Chromium as a person would.

A real pytest run with stackcheck's plugins (a fake lab on loopback addresses, never
contacted; a preflight verdict and a ping matrix in its run folder) → Allure results →
``stackcheck_reports.render`` → Chromium: the overview shows the run's test count, the suite tree
starts with the lab overview, and its lab picture is drawn. Screenshots are left in the
test's tmp folder (their paths are printed).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from browser import Browser, chromium

from stackcheck_reports import render

pytestmark = pytest.mark.slow

CONFTEST = '''
import pytest
import stackcheck_reports.mustgather as mustgather
from stackcheck_reports.session import LAB_KEY, RUN_DIR_KEY, RUN_ID_KEY
from stackcheck.lab import Lab

pytest_plugins = ["stackcheck_reports.plugin", "stackcheck_fixtures.labels"]

def _no_ssh(lab, host):
    raise ConnectionError("a fake lab: nothing to connect to")

mustgather.connect = _no_ssh

def pytest_configure(config):
    here = config.rootpath
    config.stash[RUN_ID_KEY] = "view-1"
    config.stash[RUN_DIR_KEY] = here / "run"
    config.stash[LAB_KEY] = Lab.model_validate({
        "name": "small", "provisioner": "fake",
        "ssh": {"identity_file": str(here / "id_ed25519"),
                "known_hosts": str(here / "known_hosts")},
        "hosts": [{"name": f"h{i}", "address": f"127.18.0.1{i}",
                   "roles": ["etcd", "docker", "flannel", "node"]} for i in (1, 2, 3)],
    })

@pytest.fixture(scope="session")
def lab(request):
    return request.config.stash[LAB_KEY]

@pytest.fixture(params=["h1", "h2", "h3"])
def lab_host(request, lab):
    return lab.host(request.param)
'''

ETCD = '''
import allure

@allure.feature("leader")
def test_exactly_one_leader_agreed_by_all(lab):
    assert False, "h2: expected one leader agreed by all; saw none"
'''

DOCKER = '''
import allure, pytest
pytestmark = allure.feature("daemon")

def test_daemon_answers(lab, lab_host):
    if lab_host.name == "h3":
        pytest.skip("h3: SSH down in preflight")
'''

PREFLIGHT = {"layers": {
    "ssh": {"ok": False, "summary": "h3 does not answer: no SSH on 127.18.0.13:22", "down": ["h3"]},
}}
PINGS = {"kind": "docker", "hosts": ["h1", "h2", "h3"], "pairs": {
    "h1->h2": {"status": "ok"}, "h2->h1": {"status": "ok"},
    "h1->h3": {"status": "failed", "detail": "no reply"},
    "h3->h1": {"status": "failed", "detail": "no reply"},
}}


#: The size of the biggest drawn image on the page or in a same-origin frame (the picture).
PICTURE = """(() => {
  const docs = [document, ...[...document.querySelectorAll('iframe')]
    .map(f => { try { return f.contentDocument; } catch (e) { return null; } })
    .filter(Boolean)];
  const imgs = docs.flatMap(d => [...d.querySelectorAll('img')])
    .filter(i => i.complete && i.naturalWidth >= 700);
  return imgs.length ? [imgs[0].naturalWidth, imgs[0].naturalHeight] : null;
})()"""


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """Allure results of a small run and how many results it left (checks + overview)."""
    import subprocess
    import sys

    here = tmp_path_factory.mktemp("small-run")
    (here / "conftest.py").write_text(CONFTEST)
    (here / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider -p no:testinfra\n")
    for name in ("id_ed25519", "known_hosts"):
        (here / name).write_text("")
    for layer, body in (("etcd", ETCD), ("docker", DOCKER)):
        (here / "suites" / layer).mkdir(parents=True)
        (here / "suites" / layer / f"test_{layer}.py").write_text(body)
    (here / "run" / "evidence").mkdir(parents=True)
    (here / "run" / "preflight.json").write_text(json.dumps(PREFLIGHT))
    (here / "run" / "evidence" / "pingmatrix.json").write_text(json.dumps(PINGS))
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--alluredir=results", "--no-history", "suites"],
        cwd=here, capture_output=True, text=True, timeout=120, check=False,
        env={**__import__("os").environ, "PYTHONPATH": str(repo)})
    assert "1 failed, 2 passed, 1 skipped" in done.stdout, done.stdout[-2000:] + done.stderr
    results = here / "results"
    count = len(list(results.glob("*-result.json")))
    assert count == 5  # 4 checks + the lab overview
    return results, count


def _engines() -> list:
    return [pytest.param("allure3"),
            pytest.param("allure2", marks=pytest.mark.skipif(
                not shutil.which("java"), reason="Allure 2 needs Java; Allure 3 is used"))]


@pytest.mark.parametrize("engine", _engines())
def test_report_in_chromium_shows_the_count_and_the_lab_picture(
        small_run: tuple[Path, int], tmp_path: Path, engine: str) -> None:
    if chromium() is None:
        pytest.skip("Debian's chromium is not installed (./run.sh selftest installs it)")
    try:
        render.ensure_cli(engine)
    except render.RenderError as exc:
        pytest.skip(f"no Allure CLI: {exc}")
    results, count = small_run
    index = render.render(results, tmp_path / "report", engine=engine)
    page = index.as_uri()
    with Browser(tmp_path) as browser:
        browser.goto(page)
        shown = rf"\b{count}\s*test cases" if engine == "allure2" else rf"Total\s*{count}\b"
        browser.wait_for(f"/{shown}/.test(document.body.innerText)",
                         what=f"the overview showing {count} tests")
        print(f"screenshot: {browser.screenshot(tmp_path / f'{engine}-overview.png')}")
        if engine == "allure2":
            browser.goto(page + "#suites")
            browser.wait_for("document.body.innerText.includes('No item selected')",
                             what="Allure 2's suite tree")
            browser.click_text("(lab)")
            browser.click_text("overview")
        tree = browser.evaluate("document.body.innerText")
        assert tree.index("Lab overview") < tree.index("docker"), "the overview is not on top"
        browser.click_text("Lab overview")
        size = None
        for _ in range(3):  # the attachment opens on a click; a click while loading is lost
            browser.click_text("lab picture")
            try:
                size = browser.wait_for(PICTURE, timeout=10, what="the lab picture drawn")
                break
            except AssertionError:
                continue
        assert size, "the lab picture was never drawn as an image (see the screenshots)"
        assert size[1] > 300
        print(f"screenshot: {browser.screenshot(tmp_path / f'{engine}-lab-picture.png')}")
    html = index.read_text(errors="replace")
    assert re.search(r"googletagmanager", html) is None
