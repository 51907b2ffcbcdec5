"""``stackcheck report``: the offline HTML report and the regression summary.

Mounted on ``stackcheck`` by the ``stackcheck.commands`` entry point ``report``
(pyproject.toml; see cli/main.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from stackcheck_reports.regression import compare, to_markdown
from stackcheck_reports.render import RenderError, ensure_cli, pick_engine, render
from stackcheck_reports.store import DEFAULT_HISTORY, RunRecord, Store, read_results
from stackcheck_reports.waivers import WaiverError, find, load_waivers


def _fail(message: str, code: int = 2) -> None:
    click.secho(f"stackcheck: {message}", fg="red", err=True)
    sys.exit(code)


def _current(store: Store, results: Path, run_id: str | None) -> RunRecord:
    if run_id:
        if not store.has(run_id):
            _fail(f"no run {run_id!r} in {store.root}")
        return store.load(run_id)
    if results.is_dir() and any(results.glob("*-result.json")):
        record = read_results(results)
        if store.has(record.run_id):  # kept by the pytest plugin, with waivers and JUnit path
            return store.load(record.run_id)
        store.save(record)
        return record
    ids = store.run_ids()
    if not ids:
        _fail(f"no Allure results in {results} and no runs in {store.root}")
    return store.load(ids[-1])


def _apply_waivers(record: RunRecord, path: Path) -> None:
    try:
        waivers = load_waivers(path)
    except WaiverError as exc:
        _fail(str(exc))
    for test in record.tests.values():
        waiver = find(waivers, test.allure_id, test.nodeid or test.key) if test.failed else None
        if waiver is not None and not waiver.expired():
            test.status, test.waiver = "waived", waiver.describe()
    record.expired_waivers = sorted(
        set(record.expired_waivers) | {w.describe() for w in waivers if w.expired()}
    )


@click.command("report")
@click.option("--results", type=Path, default=Path("allure-results"), show_default=True,
              help="Allure results of the run")
@click.option("--out", type=Path, default=Path("allure-report"), show_default=True,
              help="folder of the HTML report (index.html; history kept here)")
@click.option("--html/--no-html", default=True, show_default=True, help="render the HTML report")
@click.option("--engine", type=click.Choice(["auto", "allure2", "allure3"]), default="auto",
              show_default=True, help="Allure 2 (Java) or Allure 3 (Node.js only)")
@click.option("--history-dir", type=Path, default=DEFAULT_HISTORY, show_default=True)
@click.option("--run", "run_id", help="the run to report (default: the one in --results)")
@click.option("--since-last", is_flag=True, help="compare with the previous run")
@click.option("--nightly", type=click.IntRange(1), metavar="N",
              help="compare with the previous N runs")
@click.option("--waivers", type=Path, help="YAML of known failures, applied to the summary")
@click.option("--slower-ratio", type=float, default=1.5, show_default=True,
              help="a check is 'markedly slower' at this duration ratio")
@click.option("--prepare", is_flag=True,
              help="only install the Allure CLI (npm, into the cache) and exit")
def report(results: Path, out: Path, html: bool, engine: str, history_dir: Path,
           run_id: str | None, since_last: bool, nightly: int | None, waivers: Path | None,
           slower_ratio: float, prepare: bool) -> None:
    """Render the offline HTML report and say what changed since the last run(s).

    Exit status 1 when a check is newly failing or a waiver expired (with --since-last or
    --nightly), 2 when the report cannot be made.
    """
    if prepare:
        try:
            cli = ensure_cli(pick_engine(engine))
        except RenderError as exc:
            _fail(str(exc))
        click.echo(f"Allure CLI ready: {cli}", err=True)
        sys.exit(0)
    store = Store(history_dir)
    current = _current(store, results, run_id)
    if waivers is not None:
        _apply_waivers(current, waivers)
    code = 0
    if since_last or nightly:
        history = store.before(current.run_id)
        summary = compare(current, history[: nightly or 1], history=history,
                          slower_ratio=slower_ratio)
        folder = history_dir / current.run_id
        folder.mkdir(parents=True, exist_ok=True)
        markdown = to_markdown(summary)
        (folder / "summary.md").write_text(markdown)
        (folder / "summary.json").write_text(summary.to_json() + "\n")
        click.echo(markdown)
        click.echo(f"(summary in {folder / 'summary.md'} and summary.json)", err=True)
        code = summary.exit_code
    if html:
        try:
            index = render(results, out, engine=engine)
        except RenderError as exc:
            _fail(str(exc))
        click.echo(f"HTML report: {index}", err=True)
    sys.exit(code)
