"""``stackcheck lab cleanup``: find and delete resources leaked by earlier OpenStack runs."""

from __future__ import annotations

import re
from datetime import timedelta

import click
from rich.console import Console

from stackcheck_provisioners.base import ProvisionerError

UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_age(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d`` -> timedelta."""
    match = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", text)
    if not match:
        raise click.BadParameter(f"expected a number and m/h/d like 24h, got {text!r}")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


@click.command("cleanup")
@click.option("--cloud", required=True, help="cloud name in clouds.yaml")
@click.option("--older-than", "older_than", default="24h", show_default=True,
              callback=lambda _ctx, _param, value: parse_age(value),
              help="only resources created longer ago than this (30m, 24h, 7d)")
@click.option("--dry-run", is_flag=True, help="list what would be deleted, delete nothing")
def cleanup_command(cloud: str, older_than: timedelta, dry_run: bool) -> None:
    """Delete resources tagged 'stackcheck' by earlier runs (leaks), oldest first."""
    from . import cleanup, connect

    console = Console(stderr=True)
    try:
        lines = cleanup(connect(cloud), older_than, dry_run)
    except ProvisionerError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
    verb = "would delete" if dry_run else "deleted"
    for line in lines:
        click.echo(f"{verb} {line}")
    console.print(f"{len(lines)} leaked resource(s) {verb} in cloud {cloud!r}")
