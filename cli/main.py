"""The ``stackcheck`` command: manage a lab outside pytest, run the suites, report.

Commands of other packages are mounted from entry points, never imported by name:
``stackcheck.commands`` (top level, e.g. ``report``) and ``stackcheck.lab_commands``
(under ``stackcheck lab``, e.g. ``k8s-build``): NAME = module:click_command.
"""

from __future__ import annotations

import os
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from stackcheck.faults import FaultJournal, journal_path
from stackcheck.lab import InventoryError, Lab, load_inventory
from stackcheck.provisioner import (
    DEFAULT_PROVISIONER,
    INVENTORY_PROVISIONER,
    ProvisionConfig,
    ProvisionerError,
    available,
    describe_options,
    get_provisioner,
    new_run_id,
    owner_of,
    parse_key_values,
    provisioner_class,
)

console = Console(stderr=True)
DEFAULT_LAB_DIR = Path(".stackcheck/lab")
COMMANDS_GROUP = "stackcheck.commands"
LAB_COMMANDS_GROUP = "stackcheck.lab_commands"


def _fail(message: str) -> None:
    # one problem a line, never re-wrapped (an inventory or option error names file:line:field)
    for line in message.splitlines() or [""]:
        console.print(f"[red]stackcheck:[/red] {line}", markup=True, highlight=False,
                      soft_wrap=True)
    sys.exit(2)


def _parse_options(name: str, items: tuple[str, ...]) -> dict[str, str]:
    """``--option KEY=VALUE`` settings, checked against the provisioner's declared options."""
    try:
        options = parse_key_values(items, "--option")
        provisioner_class(name).parse_options(options)
    except ProvisionerError as exc:
        _fail(str(exc))
    return options


def _load_lab(lab_dir: Path, inventory: Path | None) -> Lab:
    path = inventory or lab_dir / "inventory.yaml"
    if not path.exists():
        _fail(f"no lab inventory at {path}; start one with 'stackcheck lab up'")
    return load_inventory(path)


@click.group()
@click.version_option(package_name="stackcheck")
def main() -> None:
    """stackcheck: prove a microservices lab works, layer by layer."""


@main.group()
def lab() -> None:
    """Provision, inspect and tear down a lab outside pytest."""


def _add_commands(group: click.Group, entry_point_group: str) -> None:
    """Subcommands another package adds to ``group`` (report; k8s-build, cleanup, ... under
    ``stackcheck lab``), from the entry points of ``entry_point_group``:
    NAME = module:click_command."""
    for ep in sorted(entry_points(group=entry_point_group), key=lambda e: e.name):
        try:
            command = ep.load()
        except ImportError:  # its optional extra (e.g. openstack) is not installed
            continue
        if isinstance(command, click.Command):
            group.add_command(command, ep.name)


_add_commands(lab, LAB_COMMANDS_GROUP)


@lab.command("up")
@click.option("--provisioner", "name", default=DEFAULT_PROVISIONER, show_default=True,
              type=click.Choice(available()))
@click.option("--hosts", default=3, show_default=True, type=click.IntRange(1, 64))
@click.option("--lab-dir", type=Path, default=DEFAULT_LAB_DIR, show_default=True)
@click.option("--inventory", type=Path, help="inventory file (existing provisioner)")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="provisioner-specific option, repeatable (see --help-options)")
@click.option("--help-options", is_flag=True,
              help="list the provisioner's --option keys with their defaults, and exit")
def lab_up(name: str, hosts: int, lab_dir: Path, inventory: Path | None,
           options: tuple[str, ...], help_options: bool) -> None:
    """Provision a lab (a healthy running one is reused) and print its inventory path."""
    if help_options:
        rows = describe_options(provisioner_class(name).options_model)
        width = max(len(key) for key, _, _ in rows)
        click.echo(f"--option keys of the {name!r} provisioner:")
        for key, default, text in rows:
            click.echo(f"  {key:<{width}}  {text} (default: {default})")
        return
    config = ProvisionConfig(
        run_id=new_run_id(),
        state_dir=lab_dir.resolve(),
        inventory=inventory,
        hosts=hosts,
        options=_parse_options(name, options),
    )
    provisioner = get_provisioner(name)
    try:
        created = provisioner.create(config)
    except (ProvisionerError, InventoryError) as exc:
        _fail(str(exc))
    except BaseException:
        provisioner.abort(config)
        raise
    verb = "created" if created.owned else "reused"
    console.print(f"lab {created.name!r} {verb}: {len(created.hosts)} host(s)")
    click.echo(str(lab_dir.resolve() / "inventory.yaml"))


@lab.command("status")
@click.option("--lab-dir", type=Path, default=DEFAULT_LAB_DIR, show_default=True)
@click.option("--inventory", type=Path, help="inventory of the lab (default: the local lab's)")
@click.option("--svg", "svg", type=Path, metavar="FILE",
              help="also draw the lab (its hosts and each layer's part: etcd members, nodes, "
                   "runtimes, flannel leases...; the last run's ping matrix and preflight) as "
                   "an SVG picture into FILE")
@click.option("--run-dir", type=Path, metavar="DIR",
              help="the run whose ping matrix and preflight --svg draws (default: the newest "
                   "run of this lab under ./.stackcheck/runs)")
def lab_status(lab_dir: Path, inventory: Path | None, svg: Path | None,
               run_dir: Path | None) -> None:
    """Show each host, the state of its services and pending faults.

    Exit status: 0 every service is active, 1 a service is off or a fault is pending,
    2 no lab here (no inventory) or its state cannot be read.
    """
    try:
        current = _load_lab(lab_dir, inventory)
        name = current.provisioner if inventory is None else INVENTORY_PROVISIONER
        states = get_provisioner(name).status(current)
    except (ProvisionerError, InventoryError) as exc:
        _fail(str(exc))
    table = Table(title=f"lab {current.name} ({current.provisioner})")
    table.add_column("host")
    table.add_column("address")
    table.add_column("roles")
    table.add_column("services")
    for host in current.hosts:
        services = states.get(host.name, {})
        shown = " ".join(
            f"[{'green' if s == 'active' else 'red'}]{svc}:{s}[/]" for svc, s in services.items()
        )
        table.add_row(host.name, host.address, ",".join(host.roles), shown)
    Console().print(table)
    bad = [s for per_host in states.values() for s in per_host.values() if s != "active"]
    journal = journal_path(current, Path.cwd())
    pending = FaultJournal(journal).pending() if journal.exists() else []
    if pending:
        click.echo(f"pending faults (left stopped by an interrupted run; the next run's "
                   f"preflight restarts them): {', '.join(f'{h}/{s}' for h, s in pending)}")
    if svg is not None:
        _draw(current, states, svg, run_dir)
    sys.exit(1 if bad or pending else 0)


def _draw(current: Lab, states: dict[str, dict[str, str]], svg: Path,
          run_dir: Path | None) -> None:
    from stackcheck.picture import gather, render
    from stackcheck.picture.runfiles import latest_run_dir

    run_dir = run_dir or latest_run_dir(Path.cwd() / ".stackcheck" / "runs", current.name)
    snap = gather(current, status=lambda _lab: states, run_dir=run_dir,
                  run_id=run_dir.name if run_dir else None)
    if run_dir is not None:
        snap.notes.append(f"ping matrix and preflight from run {run_dir.name}")
    svg.parent.mkdir(parents=True, exist_ok=True)
    svg.write_text(render(snap))
    problems = snap.problems()
    console.print(f"lab picture: {svg}" + (f" ({len(problems)} problem(s))" if problems else ""))


@lab.command("down")
@click.option("--lab-dir", type=Path, default=DEFAULT_LAB_DIR, show_default=True)
def lab_down(lab_dir: Path) -> None:
    """Tear down the lab recorded in LAB_DIR (works after a crash too)."""
    started = time.monotonic()
    inventory = lab_dir / "inventory.yaml"
    try:
        recorded = load_inventory(inventory) if inventory.exists() else None
    except InventoryError:
        recorded = None  # a broken inventory must not keep the state folder from cleanup
    try:
        owner_of(lab_dir.resolve(), recorded).down(lab_dir.resolve(), recorded)
    except ProvisionerError as exc:
        _fail(str(exc))
    console.print(f"lab in {lab_dir} torn down in {time.monotonic() - started:.1f}s")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--inventory", type=Path, help="run against this existing lab")
@click.option("--alluredir", type=Path, default=Path("allure-results"), show_default=True)
@click.pass_context
def run(ctx: click.Context, inventory: Path | None, alluredir: Path) -> None:
    """Run the conformance suites: pytest -n auto with stackcheck's defaults.

    Extra arguments are passed to pytest (e.g. -k etcd, -m 'not disruptive'). Works from
    any folder: pytest runs in the project folder (--inventory and --alluredir are made
    absolute first; other paths in extra arguments are read from the project folder).
    """
    project = Path(__file__).resolve().parents[1]
    args = [sys.executable, "-m", "pytest", "-c", str(project / "pyproject.toml"),
            "-n", "auto", "--dist", "loadgroup",
            f"--alluredir={alluredir.resolve()}", "--clean-alluredir"]
    if inventory:
        args.append(f"--inventory={inventory.resolve()}")
    args.extend(ctx.args)
    console.print("$ " + " ".join(args[1:]))
    os.chdir(project)
    os.execv(sys.executable, args)


_add_commands(main, COMMANDS_GROUP)


if __name__ == "__main__":
    main()
